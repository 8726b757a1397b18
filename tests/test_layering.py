"""Layering (docs/architecture.md): the array-level packages (evaluation/, retrieval/) know no model, training or
CLI; the model module imports only its config, the backbone table and utils/; data/ and utils/ are leaves; nothing
imports the CLI, and only the CLI imports the scripts; no import cycle anywhere in the package."""

import ast
from pathlib import Path

import pytest

import hf_lareid

PACKAGE_ROOT = Path(hf_lareid.__file__).parent
# Modules that load, run or train a model, and the command line.
MODEL_TRAINING_CLI = (
    "hf_lareid.modeling_lareid",
    "hf_lareid.embedding.encoder",
    "hf_lareid.embedding.fingerprint",
    "hf_lareid.embedding.backends",
    "hf_lareid.embedding.pipeline",
    "hf_lareid.embedding.onnx_export",
    "hf_lareid.embedding.loading",
    "hf_lareid.tasks.evaluate",
    "hf_lareid.convert_original",
    "hf_lareid.training",
    "hf_lareid.scripts",
    "hf_lareid.cli",
    "hf_lareid_cli",
)
# What the model module may import from the package: its config and the generic error, file and extras helpers.
MODEL_ALLOWED = (
    "hf_lareid.backbones",
    "hf_lareid.configuration_lareid",
    "hf_lareid.utils.errors",
    "hf_lareid.utils.integrity",
    "hf_lareid.utils.io",
    "hf_lareid.utils.extras",
)
# What data/ may import from the package: itself, the file writer and the image reader (standard library, PIL, numpy).
DATA_ALLOWED = ("hf_lareid.data", "hf_lareid.utils.errors", "hf_lareid.utils.io", "hf_lareid.utils.images")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports(path: Path) -> set[str]:
    """Absolute names of the `hf_lareid` modules `path` imports (anywhere in the file, functions included)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import rerank` imports a module
                candidate = f"{target}.{alias.name}"
                names.add(
                    candidate
                    if (PACKAGE_ROOT.parent / Path(*candidate.split("."))).with_suffix(".py").exists()
                    else target
                )
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.split(".")[0] in ("hf_lareid", "hf_lareid_cli")}


def is_under(name: str, prefixes) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


@pytest.mark.parametrize("package", ["evaluation", "retrieval"])
def test_array_packages_import_no_model_training_or_cli(package):
    for path in sorted((PACKAGE_ROOT / package).rglob("*.py")):
        for name in package_imports(path):
            assert not is_under(name, MODEL_TRAINING_CLI), f"{path.relative_to(PACKAGE_ROOT)} imports {name}"


def test_data_imports_only_itself_and_the_file_and_image_helpers():
    for path in sorted((PACKAGE_ROOT / "data").rglob("*.py")):
        for name in package_imports(path):
            assert is_under(name, DATA_ALLOWED), f"{path.relative_to(PACKAGE_ROOT)} imports {name}"


def test_model_imports_only_its_config_and_generic_helpers():
    for name in package_imports(PACKAGE_ROOT / "modeling_lareid.py"):
        assert is_under(name, MODEL_ALLOWED), f"modeling_lareid.py imports {name}"


def test_the_package_has_no_import_cycle():
    """Every module of the package (package `__init__`s included, imports inside functions too) against every other:
    a cycle is reported as the chain of modules that closes it."""
    modules = {module_name(path): path for path in PACKAGE_ROOT.rglob("*.py")}
    graph = {
        name: {imported for imported in package_imports(path) if imported in modules} for name, path in modules.items()
    }
    graph = {name: imported - {name} for name, imported in graph.items()}
    finished: set[str] = set()

    def visit(module, trail):
        assert module not in trail, "import cycle: " + " -> ".join([*trail[trail.index(module) :], module])
        if module in finished:
            return
        for imported in sorted(graph[module]):
            visit(imported, [*trail, module])
        finished.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_utils_import_nothing_of_the_package_but_utils():
    for path in sorted((PACKAGE_ROOT / "utils").rglob("*.py")):
        for name in package_imports(path):
            assert is_under(name, ("hf_lareid.utils",)), f"{path.relative_to(PACKAGE_ROOT)} imports {name}"


def test_nothing_outside_the_cli_imports_it():
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        if is_under(module_name(path), ("hf_lareid.cli",)):
            continue
        for name in package_imports(path):
            assert not is_under(name, ("hf_lareid.cli", "hf_lareid_cli")), (
                f"{path.relative_to(PACKAGE_ROOT)} imports {name}"
            )


def test_the_library_imports_no_script():
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        if is_under(module_name(path), ("hf_lareid.cli", "hf_lareid.scripts")):
            continue
        for name in package_imports(path):
            assert not is_under(name, ("hf_lareid.scripts",)), f"{path.relative_to(PACKAGE_ROOT)} imports {name}"
