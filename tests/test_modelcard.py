"""The model card: built with huggingface_hub from a shipped Jinja template, parsed back by `ModelCard.load`."""

import configparser
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from hf_lareid.hub.modelcard import (
    DEFAULT_LICENSE,
    TEMPLATE_PATH,
    check_model_card,
    hub_base_model,
    read_model_card_metadata,
    render_model_card,
    write_model_card,
)
from hf_lareid.scripts.train import parse_arguments

REPO = Path(__file__).resolve().parents[1]
FIELDS = {
    "metrics": {"eval_rank1": 0.9312, "eval_rank5": 0.97, "eval_mAP": 0.8046, "eval_loss": 1.2},
    "setup": "baseline",
    "datasets": {"course": 62},
    "eval_dataset": "course",
    "training_args": {
        "learning_rate": 3e-5,
        "optimizer": "adamw",
        "num_train_epochs": 6,
        "max_steps": -1,
        "eval_flip": True,
    },
}


def test_the_card_parses_with_huggingface_hub_and_states_percentages(tmp_path):
    path = write_model_card(tmp_path / "my-reid", **FIELDS)
    card = ModelCard.load(path)
    assert card.data.library_name == "hf-lareid" and card.data.pipeline_tag == "image-feature-extraction"
    assert card.data.model_name == "my-reid" and card.data.datasets == ["course"]
    results = {result.metric_name: result for result in card.data.eval_results}
    assert sorted(results) == ["Rank-1 (%)", "Rank-5 (%)", "mAP (%)"]  # no loss, no unknown keys
    assert results["Rank-1 (%)"].metric_value == 93.12 and results["mAP (%)"].metric_value == 80.46
    rank1 = results["Rank-1 (%)"]
    assert rank1.metric_type == "rank-1" and rank1.dataset_name == "course" and rank1.dataset_args is None
    assert rank1.metric_args == {"protocol": "auto", "similarity": "cosine", "flip": True}
    assert rank1.task_type == "image-feature-extraction" and rank1.task_name == "Person re-identification"
    text = path.read_text()
    assert "| Rank-1 | Rank-5 | mAP |" in text and "| 93.12 | 97.00 | 80.46 |" in text and "percentages" in text
    assert "with flip test-time augmentation" in text
    # The hyper-parameters are in the body (the model-index has no field for them).
    assert "- learning_rate: 3e-05" in text and "- num_train_epochs: 6" in text and "max_steps" not in text
    assert not [p for p in path.parent.iterdir() if p.name != "README.md"]  # no temporary file left behind


def test_license_defaults_to_the_packages_and_can_be_set(tmp_path):
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    assert DEFAULT_LICENSE == setup["metadata"]["license"].lower() == "mit"
    assert read_model_card_metadata(write_model_card(tmp_path / "a", **FIELDS))["license"] == "mit"
    assert (
        read_model_card_metadata(write_model_card(tmp_path / "b", license="cc-by-nc-4.0", **FIELDS))["license"]
        == "cc-by-nc-4.0"
    )
    model_args = parse_arguments(["--output_dir", str(tmp_path), "--license", "apache-2.0"])[0]
    assert model_args.license == "apache-2.0" and parse_arguments(["--output_dir", str(tmp_path)])[0].license == "mit"


@pytest.mark.parametrize(
    "backbone, recorded",
    [
        ("google/vit-base-patch16-224", "google/vit-base-patch16-224"),
        ("/home/someone/models/vit-base", None),
        ("./vit-base", None),
        ("~/vit-base", None),
        (None, None),
    ],
)
def test_base_model_is_a_hub_id_or_left_out(tmp_path, backbone, recorded):
    text = render_model_card("m", base_model=backbone, **FIELDS)
    metadata = ModelCard(text).data.to_dict()
    assert metadata.get("base_model") == recorded
    if backbone and not recorded:
        assert backbone not in text and f"`{Path(backbone).name}`" in text


def test_an_existing_local_folder_is_never_a_base_model(tmp_path, monkeypatch):
    (tmp_path / "vit").mkdir()
    monkeypatch.chdir(tmp_path)
    assert hub_base_model("vit") is None and hub_base_model("vit-base") == "vit-base"


def test_the_install_line_installs_from_the_repository():
    text = render_model_card("m", **FIELDS)
    assert "pip install ./hf-lareid" in text and "pip install hf-lareid\n" not in text
    assert "not on a package index" in text


def test_the_template_is_shipped_in_the_package():
    assert TEMPLATE_PATH.is_file() and TEMPLATE_PATH.parent.name == "hub"
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    assert f"hub/{TEMPLATE_PATH.name}" in setup["options.package_data"]["hf_lareid"].split()
    assert "{{ card_data }}" in TEMPLATE_PATH.read_text()


def test_an_unevaluated_card_has_no_model_index(tmp_path):
    path = write_model_card(tmp_path, metrics={}, datasets=["synthetic"])
    metadata = check_model_card(path)
    assert "model-index" not in metadata and "Not evaluated." in path.read_text()


@pytest.mark.parametrize(
    "metadata, message",
    [
        ("license: mit\n", "library_name"),
        (
            "library_name: hf-lareid\npipeline_tag: image-feature-extraction\nlicense: mit\ntags: [other]\n",
            "person-reid",
        ),
        ("library_name: hf-lareid\nmodel-index:\n- results:\n  - metrics: 3\n", "do not parse"),
    ],
)
def test_check_model_card_names_what_is_wrong(tmp_path, metadata, message):
    path = tmp_path / "README.md"
    path.write_text(f"---\n{metadata}---\nbody\n")
    with pytest.raises(ValueError, match=message) as error:
        check_model_card(path)
    assert str(path) in str(error.value)
