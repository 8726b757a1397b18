"""The data package is a leaf: it imports no model, training, evaluation or CLI code (only the file writer)."""

import ast
from pathlib import Path

import hf_lareid.data

# hf_lareid.file_utils is below every package (standard library and filelock only): every writer uses it.
ALLOWED = ("..file_utils", "hf_lareid.file_utils")
FORBIDDEN = ("modeling", "configuration", "training", "evaluation", "retrieval", "cli", "features", "pipeline")
# Package-level leaf modules (PIL/numpy only) that data may share with the rest of the package.
SHARED_LEAVES = ("image_utils",)


def test_data_modules_import_only_data_and_libraries():
    for module in Path(hf_lareid.data.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                name = ("." * node.level) + (node.module or "")
                if name in ALLOWED or name in {f"..{leaf}" for leaf in SHARED_LEAVES} | {f"hf_lareid.{leaf}" for leaf in SHARED_LEAVES}:
                    continue
                assert not (node.level >= 2 or name.startswith("hf_lareid.") and not name.startswith("hf_lareid.data")), (
                    f"{module.name} imports {name}"
                )
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not any(alias.name.startswith(f"hf_lareid.{part}") for part in FORBIDDEN), (
                        f"{module.name} imports {alias.name}"
                    )


def test_public_names_exist():
    for name in hf_lareid.data.__all__:
        assert getattr(hf_lareid.data, name) is not None
