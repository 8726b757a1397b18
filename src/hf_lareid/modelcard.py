"""The one model-card writer: `README.md` for a training output folder and for `lareid push`.

The card carries Hub metadata (`library_name`, `pipeline_tag`, tags, datasets, license and a `model-index` with
Rank-1/mAP, the evaluation dataset, and the protocol and training setup in `results[].dataset.args`), the method in
a few lines, how to load the model and run the pipeline,
the training setup (hyper-parameters and the blockwise unfreezing schedule) and the intended uses and limitations.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .file_utils import atomic_write_text

MODEL_CARD_NAME = "README.md"
TAGS = ["person-reid", "la-transformer"]
DEFAULT_PROTOCOL = (
    "single-query retrieval by cosine similarity of the unit-norm embeddings; gallery images of the query's person "
    "taken by the query's camera are left out (Market-1501 protocol) when cameras are known"
)
# metric key -> (model-index type, display name); ranks and mAP are fractions in [0, 1].
METRICS = {
    "rank1": ("rank-1", "Rank-1"),
    "rank5": ("rank-5", "Rank-5"),
    "rank10": ("rank-10", "Rank-10"),
    "mAP": ("map", "mAP"),
    "mINP": ("minp", "mINP"),
}
# Hyper-parameters worth stating in the card, in this order, when present in `training_args`.
HYPERPARAMETERS = (
    "backbone",
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


def _metric_value(metrics: Mapping[str, Any], key: str) -> float | None:
    """Finds `rank1` as `rank1` or `eval_rank1` (Trainer prefix)."""
    for name in (key, f"eval_{key}", f"test_{key}"):
        if name in metrics and metrics[name] is not None:
            return float(metrics[name])
    return None


def _hyperparameters(training_args: Mapping[str, Any]) -> dict[str, Any]:
    """The [`HYPERPARAMETERS`] present in `training_args`, in order (`backbone` and an unset `max_steps` left out)."""
    found = {}
    for key in HYPERPARAMETERS:
        value = training_args.get(key)
        if key == "backbone" or value in (None, "", [], {}) or (key == "max_steps" and value == -1):
            continue
        found[key] = value
    return found


def _yaml_value(value: Any) -> Any:
    """`value` as plain YAML data (str, int, float, bool, lists, dicts): other objects become their text."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _yaml_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_yaml_value(v) for v in value]
    return str(getattr(value, "value", value))  # enums by their value


def _training_setup(
    setup: str | None,
    base_model: str | None,
    datasets: Mapping[str, int | None],
    training_args: Mapping[str, Any],
) -> dict[str, Any]:
    """
    The training setup as stated in the card's `model-index` (`results[].dataset.args`, next to the protocol):
    `setup`, `backbone`, `train_datasets` (`{name: training identities}`, or a list of names) and
    `hyperparameters`. Empty entries are left out.
    """
    found: dict[str, Any] = {}
    if setup:
        found["setup"] = str(setup)
    found["backbone"] = str(base_model) if base_model else "none (trained from scratch)"
    if datasets:
        counted = any(count for count in datasets.values())
        found["train_datasets"] = dict(datasets) if counted else list(datasets)
    hyperparameters = _hyperparameters(training_args)
    if hyperparameters:
        found["hyperparameters"] = hyperparameters
    return _yaml_value(found)


def _model_index(
    model_name: str,
    metrics: Mapping[str, Any],
    eval_dataset: str | None,
    protocol: str,
    setup: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    values = [(key, _metric_value(metrics, key)) for key in METRICS]
    entries = [
        {"type": METRICS[key][0], "value": round(value, 4), "name": METRICS[key][1]}
        for key, value in values
        if value is not None
    ]
    if not entries:
        return []
    dataset_name = eval_dataset or "unknown"
    return [
        {
            "name": model_name,
            "results": [
                {
                    "task": {"type": "image-feature-extraction", "name": "Person re-identification"},
                    "dataset": {
                        "type": dataset_name,
                        "name": dataset_name,
                        "split": "query/gallery",
                        # The Hub's model-index has no field for the training setup; dataset.args holds any dict.
                        "args": {"protocol": protocol, **dict(setup or {})},
                    },
                    "metrics": entries,
                }
            ],
        }
    ]


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def render_model_card(
    model_name: str = "la-transformer-reid",
    metrics: Mapping[str, Any] | None = None,
    setup: str | None = None,
    datasets: Sequence[str] | Mapping[str, int] | None = None,
    eval_dataset: str | None = None,
    training_args: Mapping[str, Any] | None = None,
    unfreeze_schedule: str | None = None,
    base_model: str | None = None,
    license: str = "apache-2.0",
    repo_id: str | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    model_summary: str | None = None,
) -> str:
    """
    The model card (`README.md`) text: YAML metadata, then the card body.

    Args:
        model_name: the name in the title and in `model-index`.
        metrics: evaluation results; keys `rank1`, `rank5`, `rank10`, `mAP`, `mINP` (or with an `eval_` prefix),
            fractions in [0, 1].
        setup: the hub_config setup the model was trained with (`"baseline"`, `"tiny"`, a folder).
        datasets: the training data sets, as names or as `{name: number of training identities}`.
        eval_dataset: the data set whose query/gallery splits gave `metrics`.
        training_args: hyper-parameters (a `TrainingArguments.to_dict()` or a setup's `training_args.json`).
        unfreeze_schedule: the blockwise unfreezing schedule as text (see `format_unfreeze_schedule`), if used.
        base_model: the pretrained ViT the backbone came from; `None` when trained from scratch.
        license: the license of the weights (Hub license identifier).
        repo_id: the Hub repository shown in the loading snippet (defaults to a placeholder path).
        protocol: how the metrics were computed, stated in the card and in `model-index`.
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
    metadata: dict[str, Any] = {
        "library_name": "hf-lareid",
        "pipeline_tag": "image-feature-extraction",
        "license": license,
        "tags": list(TAGS),
    }
    if dataset_counts:
        metadata["datasets"] = list(dataset_counts)
    if base_model:
        metadata["base_model"] = base_model
    setup_fields = _training_setup(setup, base_model, dataset_counts, training_args)
    model_index = _model_index(model_name, metrics, eval_dataset, protocol, setup_fields)
    if model_index:
        metadata["model-index"] = model_index
    front_matter = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True).strip()

    repo = repo_id or "path/to/this/model"
    lines = [f"---\n{front_matter}\n---", "", f"# {model_name}", ""]
    if model_summary:
        lines += [model_summary, ""]
    lines += [
        "A person re-identification model: the **Locally Aware Transformer** (LA-Transformer, Sharma et al. 2021) "
        "built with the `hf-lareid` package. It maps a person crop to a unit-norm "
        "embedding; images of the same person have a high cosine similarity.",
        "",
        "## Method",
        "",
        "A ViT encoder reads the image as patches. The patch tokens of each grid row are averaged and blended with "
        "the global class token (globally enhanced local tokens, eq. 6 of the paper); every row has its own "
        "classifier, and training minimises the sum of the per-row cross-entropies. The embedding is the "
        "concatenation of the row vectors, L2-normalised. Pretrained backbones are fine-tuned blockwise: the "
        "encoder starts frozen and one more block is unfrozen every `t` epochs, with a learning-rate decay at "
        "each step (the paper's Algorithm 1).",
        "",
    ]
    lines += ["## Results", ""]
    present = [(key, _metric_value(metrics, key)) for key in METRICS]
    present = [(key, value) for key, value in present if value is not None]
    if present:
        lines += [
            f"Evaluated on the query/gallery splits of `{eval_dataset or 'unknown'}`: {protocol}.",
            "",
            "| " + " | ".join(METRICS[key][1] for key, _ in present) + " |",
            "|" + "---|" * len(present),
            "| " + " | ".join(f"{100 * value:.2f}%" for _, value in present) + " |",
            "",
        ]
    else:
        lines += ["Not evaluated.", ""]
    lines += [
        "## How to use",
        "",
        "```bash",
        "pip install hf-lareid",
        "```",
        "",
        "```python",
        "import hf_lareid  # registers the model with AutoModel and the `lareid-embedding` pipeline",
        "from transformers import AutoModel, pipeline",
        "",
        f'model = AutoModel.from_pretrained("{repo}")',
        f'embedder = pipeline("lareid-embedding", model="{repo}")',
        'vectors = embedder(["person1.jpg", "person2.jpg"], return_tensors="np")',
        "similarity = vectors[0] @ vectors[1]  # cosine similarity: the embeddings have unit norm",
        "```",
        "",
        "## Training",
        "",
    ]
    if setup:
        lines.append(f"- Setup: `{setup}` (hf-lareid `hub_configs`)")
    lines.append(f"- Backbone: {'`' + base_model + '` (pretrained)' if base_model else 'trained from scratch'}")
    if dataset_counts:
        described = [f"`{name}`" + (f" ({count} identities)" if count else "") for name, count in dataset_counts.items()]
        lines.append(f"- Training data: {', '.join(described)}")
    for key, value in _hyperparameters(training_args).items():
        lines.append(f"- {key}: {_format_value(value)}")
    lines.append("")
    if unfreeze_schedule:
        lines += ["Blockwise unfreezing schedule (Algorithm 1):", "", "```text", unfreeze_schedule.rstrip(), "```", ""]
    lines += [
        "## Intended uses and limitations",
        "",
        "- Intended for research on person re-identification and for matching people across cameras where the "
        "people filmed know it and have agreed, or where the law explicitly allows it.",
        "- Person re-identification is a surveillance technology. Tracking people without their consent can be "
        "unlawful (e.g. under the GDPR in the EU) and harms privacy and freedom of assembly. Check the law of the "
        "place where it is used and do not use it to identify, profile or follow people covertly.",
        "- Accuracy depends on the training data: small or unbalanced data sets give a model that works worse for "
        "people, clothing, body shapes, skin tones, lighting and camera set-ups they under-represent. Evaluate it "
        "on data from the intended cameras before relying on it, and keep a human in the loop for any decision "
        "about a person.",
        "- The model matches appearance (mostly clothing), not identity: a change of clothes defeats it, and "
        "similarly dressed people are confused.",
        "",
        "## Citation",
        "",
        "The method (Sharma, Kapil and Chapman 2021; the setups `baseline`, `improvement1` and `improvement2` "
        "follow Table 2 of Bithel and Sharma's follow-up of the same title, IIT Delhi):",
        "",
        "```bibtex",
        "@article{sharma2021person,",
        "  title={Person Re-Identification with a Locally Aware Transformer},",
        "  author={Sharma, Charu and Kapil, Siddhant R. and Chapman, David},",
        "  journal={arXiv preprint arXiv:2106.03720},",
        "  year={2021}",
        "}",
        "```",
        "",
    ]
    return "\n".join(lines)


def write_model_card(output_dir: str | os.PathLike, **card_fields: Any) -> Path:
    """
    Writes `output_dir/README.md` atomically (`file_utils.atomic_write_text`); `card_fields` as in [`render_model_card`].

    `model_name` defaults to the folder's name. Returns the path written.

    Example:

    ```python
    >>> write_model_card("out", metrics={"eval_rank1": 0.93, "eval_mAP": 0.89}, setup="tiny",
    ...                  datasets=["synthetic"], eval_dataset="synthetic")  # -> Path('out/README.md')
    ```
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    card_fields.setdefault("model_name", output_dir.resolve().name)
    text = render_model_card(**card_fields)
    path = output_dir / MODEL_CARD_NAME
    atomic_write_text(path, text)
    return path


def read_model_card_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The YAML metadata of a model card, parsed offline (`huggingface_hub.ModelCard` validation calls the Hub)."""
    text = Path(path).read_text(encoding="utf-8")
    if not text.startswith("---\n") or "\n---" not in text[4:]:
        raise ValueError(f"{path}: a model card starts with YAML metadata between two '---' lines.")
    return yaml.safe_load(text[4 : text.index("\n---", 4)]) or {}


__all__ = ["MODEL_CARD_NAME", "read_model_card_metadata", "render_model_card", "write_model_card"]
