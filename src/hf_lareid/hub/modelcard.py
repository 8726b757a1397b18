"""The one model-card writer and checker: `README.md` of a training output folder, checked by `lareid push`.

The card is built as sentence-transformers builds its cards: the metadata is a `huggingface_hub.ModelCardData` with
one `EvalResult` per metric (never hand-written YAML), and the body is the Jinja template `model_card_template.md`
shipped beside this module, rendered by `ModelCard.from_template`. Metadata: `library_name`, `pipeline_tag`,
`license` (default: the package's MIT; `lareid train --license`), tags, training `datasets`, `base_model` (a Hub id
only, never a local path) and a `model-index` whose metric values are percentages and whose `metrics[].args` hold
the evaluation protocol. The training setup and hyper-parameters are stated in the card body (the model-index has no
field for them).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..utils.errors import InvalidInputError
from ..utils.io import atomic_write_text

MODEL_CARD_NAME = "README.md"
TEMPLATE_PATH = Path(__file__).with_name("model_card_template.md")
TAGS = ["person-reid", "la-transformer"]
DEFAULT_LICENSE = "mit"  # the license of the hf-lareid package (setup.cfg); weights may carry another
REQUIRED_METADATA = ("library_name", "pipeline_tag", "tags", "license")
INSTALL_COMMAND = "pip install ./hf-lareid  # the folder of a checkout (git clone) of the hf-lareid repository"
# Protocol name (as `evaluate_model` takes it) -> how the metrics were computed, in words.
PROTOCOLS = {
    "auto": "the Market-1501 protocol where camera ids are known (gallery images of the query's person taken by the "
    "query's camera are left out), else only the query image itself is left out of its gallery",
    "market1501": "the Market-1501 protocol (gallery images of the query's person taken by the query's camera, and "
    "junk images, are left out)",
    "cuhk03": "the CUHK03 single-gallery-shot protocol",
    "no-camera": "without camera ids (only the query image itself is left out of its gallery)",
}
# metric key -> (model-index type, display name); the card states the values as percentages.
METRICS = {
    "rank1": ("rank-1", "Rank-1"),
    "rank5": ("rank-5", "Rank-5"),
    "rank10": ("rank-10", "Rank-10"),
    "mAP": ("map", "mAP"),
    "mINP": ("minp", "mINP"),
}
# Hyper-parameters worth stating in the card, in this order, when present in `training_args`.
HYPERPARAMETERS = (
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "learning_rate",
    "optimizer",
    "weight_decay",
    "lr_scheduler_type",
    "warmup_steps",
    "label_smoothing",
    "triplet_loss_weight",
    "triplet_margin",
    "unfreeze_every_epochs",
    "lr_decay",
    "bf16",
    "seed",
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def _metric_value(metrics: Mapping[str, Any], key: str) -> float | None:
    """Finds `rank1` as `rank1` or `eval_rank1` (Trainer prefix)."""
    for name in (key, f"eval_{key}", f"test_{key}"):
        if name in metrics and metrics[name] is not None:
            return float(metrics[name])
    return None


def _as_percent(value: float) -> float:
    """A metric as a percentage with 2 decimals: fractions in [0, 1] (what `evaluate_reid` returns) are scaled."""
    return round(100 * value if value <= 1.0 else value, 2)


def _format_value(value: Any) -> str:
    """A hyper-parameter value as text (enums by their value)."""
    value = getattr(value, "value", value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_format_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(map(_format_value, value))
    return str(value)


def _hyperparameters(training_args: Mapping[str, Any]) -> dict[str, str]:
    """The [`HYPERPARAMETERS`] present in `training_args`, in order, as text (an unset `max_steps` left out)."""
    found = {}
    for key in HYPERPARAMETERS:
        value = training_args.get(key)
        if value in (None, "", [], {}) or (key == "max_steps" and value == -1):
            continue
        found[key] = _format_value(value)
    return found


def hub_base_model(backbone: str | os.PathLike | None) -> str | None:
    """
    `backbone` when it names a Hub model (`google/vit-base-patch16-224`), else `None`: a local folder's path is never
    recorded (it means nothing elsewhere and leaks the machine's layout).

    Example:

    ```python
    >>> hub_base_model("google/vit-base-patch16-224"), hub_base_model("/home/me/vit"), hub_base_model("./vit")
    ('google/vit-base-patch16-224', None, None)
    ```
    """
    if not backbone:
        return None
    text = str(backbone)
    if text.startswith((".", "/", "~")) or os.path.isabs(text) or os.path.exists(text) or not _HUB_ID.match(text):
        return None
    return text


def _backbone_description(backbone: str | None) -> str:
    if not backbone:
        return "trained from scratch"
    hub_id = hub_base_model(backbone)
    return f"`{hub_id}` (pretrained)" if hub_id else f"a local pretrained ViT (`{Path(str(backbone)).name}`)"


def build_card_data(
    model_name: str,
    metrics: Mapping[str, Any],
    datasets: Sequence[str],
    eval_dataset: str | None,
    base_model: str | None,
    license: str,
    protocol: str,
    flip: bool = False,
) -> ModelCardData:
    """
    The card's metadata: one `EvalResult` per metric found in `metrics` (percentages; `metrics[].args` holds the
    protocol, the similarity and whether flip test-time augmentation was used), `base_model` only for a Hub id.
    """
    eval_results = []
    for key, (metric_type, display_name) in METRICS.items():
        value = _metric_value(metrics, key)
        if value is None:
            continue
        eval_results.append(
            EvalResult(
                task_type="image-feature-extraction",
                task_name="Person re-identification",
                dataset_type=eval_dataset or "unknown",
                dataset_name=eval_dataset or "unknown",
                dataset_split="query/gallery",
                metric_type=metric_type,
                metric_value=_as_percent(value),
                metric_name=f"{display_name} (%)",
                metric_config=protocol,
                metric_args={"protocol": protocol, "similarity": "cosine", "flip": bool(flip)},
            )
        )
    return ModelCardData(
        library_name="hf-lareid",
        pipeline_tag="image-feature-extraction",
        license=license,
        tags=list(TAGS),
        datasets=list(datasets) or None,
        base_model=hub_base_model(base_model),
        model_name=model_name if eval_results else None,
        eval_results=eval_results or None,
    )


def render_model_card(
    model_name: str = "la-transformer-reid",
    metrics: Mapping[str, Any] | None = None,
    setup: str | None = None,
    datasets: Sequence[str] | Mapping[str, int] | None = None,
    eval_dataset: str | None = None,
    training_args: Mapping[str, Any] | None = None,
    unfreeze_schedule: str | None = None,
    base_model: str | None = None,
    license: str = DEFAULT_LICENSE,
    repo_id: str | None = None,
    protocol: str = "auto",
    model_summary: str | None = None,
) -> str:
    """
    The model card (`README.md`) text: metadata from [`build_card_data`], body from `model_card_template.md`.

    Args:
        model_name: the name in the title and in `model-index`.
        metrics: evaluation results; keys `rank1`, `rank5`, `rank10`, `mAP`, `mINP` (or with an `eval_` prefix),
            fractions in [0, 1] (written as percentages).
        setup: the hub_config setup the model was trained with (`"baseline"`, `"tiny"`, a folder).
        datasets: the training data sets, as names or as `{name: number of training identities}`.
        eval_dataset: the data set whose query/gallery splits gave `metrics`.
        training_args: hyper-parameters (a `TrainingArguments.to_dict()` or a setup's `training_args.json`).
        unfreeze_schedule: the blockwise unfreezing schedule as text (see `format_unfreeze_schedule`), if used.
        base_model: the pretrained ViT the backbone came from (a Hub id or a folder; only a Hub id is recorded as
            `base_model`); `None` when trained from scratch.
        license: the license of the weights (Hub license identifier); defaults to the package's (`mit`).
        repo_id: the Hub repository shown in the loading snippet (defaults to a placeholder path).
        protocol: the evaluation protocol's name (a key of [`PROTOCOLS`], as `evaluate_model` takes it).
        model_summary: one line about the model (e.g. its size), shown under the title.

    Example:

    ```python
    >>> card = render_model_card("my-reid", metrics={"eval_rank1": 0.93, "eval_mAP": 0.89}, setup="baseline",
    ...                          datasets={"course": 62}, eval_dataset="course")
    >>> card.splitlines()[0]
    '---'
    ```
    """
    metrics = dict(metrics or {})
    training_args = dict(training_args or {})
    dataset_counts = dict(datasets) if isinstance(datasets, Mapping) else {name: None for name in datasets or []}
    card_data = build_card_data(
        model_name,
        metrics,
        list(dataset_counts),
        eval_dataset,
        base_model,
        license,
        protocol,
        flip=bool(training_args.get("eval_flip", False)),
    )
    results = [
        {"name": METRICS[key][1], "value": _as_percent(value)}
        for key in METRICS
        if (value := _metric_value(metrics, key)) is not None
    ]
    training_data = ", ".join(
        f"`{name}`" + (f" ({count} identities)" if count else "") for name, count in dataset_counts.items()
    )
    card = ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE_PATH),
        title=model_name,
        model_summary=model_summary,
        results=results,
        eval_dataset=eval_dataset or "unknown",
        protocol_description=PROTOCOLS.get(protocol, protocol),
        flip=bool(training_args.get("eval_flip", False)),
        install_command=INSTALL_COMMAND,
        repo=repo_id or "path/to/this/model",
        setup=setup,
        backbone_description=_backbone_description(base_model),
        training_data=training_data,
        hyperparameters=_hyperparameters(training_args),
        unfreeze_schedule=(unfreeze_schedule or "").rstrip(),
    )
    text = str(card)
    return text if text.endswith("\n") else text + "\n"


def write_model_card(output_dir: str | os.PathLike, **card_fields: Any) -> Path:
    """
    Writes `output_dir/README.md` atomically (`utils.io.atomic_write_text`); `card_fields` as in
    [`render_model_card`]. `model_name` defaults to the folder's name. Returns the path written.

    Example:

    ```python
    >>> path = write_model_card("out", metrics={"eval_rank1": 0.93, "eval_mAP": 0.89}, setup="tiny",
    ...                         datasets=["synthetic"], eval_dataset="synthetic")
    >>> path.name, check_model_card(path)["library_name"]
    ('README.md', 'hf-lareid')
    ```
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    card_fields.setdefault("model_name", output_dir.resolve().name)
    return _write_card_file(output_dir / MODEL_CARD_NAME, render_model_card(**card_fields))


def _write_card_file(path: Path, text: str) -> Path:
    """The one place a model card file is written (atomically)."""
    atomic_write_text(path, text)
    return path


def read_model_card_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """
    The metadata of a model card as a dict (`model-index` included), parsed offline with `ModelCard.load`; a card
    whose metadata does not parse raises ValueError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no model card there (`lareid train` writes one).")
    try:
        card = ModelCard.load(path)
    except ValueError as error:  # huggingface_hub: an invalid model-index or YAML
        raise InvalidInputError(f"{path}: the model card metadata do not parse: {error}") from error
    return card.data.to_dict()


def check_model_card(path: str | os.PathLike) -> dict[str, Any]:
    """
    Checks a model card offline (`ModelCard.validate` would call the Hub) and returns its metadata.

    Needs `library_name`, `pipeline_tag`, `license`, the tags `person-reid` and `la-transformer`, and, where a
    `model-index` is present, results with a name, a dataset and numeric metric values (huggingface_hub checks its
    shape when parsing).
    """
    metadata = read_model_card_metadata(path)
    missing = [key for key in REQUIRED_METADATA if not metadata.get(key)]
    missing += [f"tag {tag!r}" for tag in TAGS if tag not in (metadata.get("tags") or [])]
    if missing:
        raise InvalidInputError(
            f"{path}: the model card metadata lack {missing}: rewrite the card with `lareid train`."
        )
    for entry in metadata.get("model-index") or []:
        for result in entry.get("results") or []:
            metrics = result.get("metrics") or []
            if not entry.get("name") or not result.get("dataset", {}).get("name") or not metrics:
                raise InvalidInputError(f"{path}: a model-index result lacks a name, a dataset or metrics.")
            for metric in metrics:
                if not isinstance(metric.get("value"), (int, float)):
                    raise InvalidInputError(f"{path}: model-index metric {metric.get('type')!r} has no numeric value.")
    return metadata


__all__ = [
    "DEFAULT_LICENSE",
    "MODEL_CARD_NAME",
    "PROTOCOLS",
    "TEMPLATE_PATH",
    "build_card_data",
    "check_model_card",
    "hub_base_model",
    "read_model_card_metadata",
    "render_model_card",
    "write_model_card",
]
