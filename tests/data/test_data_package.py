"""The data package's public names (its layering is checked in tests/test_layering.py)."""

import hf_lareid.data


def test_public_names_exist():
    for name in hf_lareid.data.__all__:
        assert getattr(hf_lareid.data, name) is not None
