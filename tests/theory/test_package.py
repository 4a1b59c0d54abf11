"""The package's lazily loaded public names (PEP 562) resolve to the submodules' objects."""

import importlib

import pytest

import overparam_theory


def test_every_public_name_resolves_to_its_submodule_object():
    assert sorted(overparam_theory.__all__) == sorted(overparam_theory._EXPORTS)
    for name, module in overparam_theory._EXPORTS.items():
        expected = getattr(importlib.import_module(f"overparam_theory.{module}"), name)
        assert getattr(overparam_theory, name) is expected
    assert set(overparam_theory.__all__) <= set(dir(overparam_theory))


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        overparam_theory.nope  # noqa: B018
    from overparam_theory import lnn  # submodules still import through the package

    assert lnn.lnn_dynamics is overparam_theory.lnn_dynamics
