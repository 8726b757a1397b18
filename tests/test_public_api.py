"""The public API: every name `hf_lareid.__all__` promises resolves to the object its submodule defines."""

import subprocess
import sys
from importlib import import_module

import pytest

import hf_lareid


@pytest.mark.parametrize("name", sorted(hf_lareid.__all__))
def test_every_public_name_resolves(name):
    value = getattr(hf_lareid, name)
    module = hf_lareid._LAZY_NAMES.get(name)
    if module is not None:
        assert value is getattr(import_module(module, "hf_lareid"), name)


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        hf_lareid.no_such_thing  # noqa: B018


def test_import_does_not_load_training_or_datasets():
    code = "import sys, hf_lareid; print('transformers.trainer' in sys.modules, 'datasets' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
