"""The installed distribution contains every package folder of the source tree."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _import_name(folder: Path) -> str:
    parts = folder.relative_to(ROOT).parts
    first = "overparam_cli" if parts[0] == "cli" else parts[0]
    return ".".join((first, *parts[1:]))


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        _import_name(init.parent)
        for top in ("overparam_theory", "overparam_empirical", "cli")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found, "no package found"
    assert found - listed == set(), f"packages missing from pyproject.toml: {sorted(found - listed)}"


def test_cli_is_importable_under_a_unique_name():
    import overparam_cli.main

    assert overparam_cli.main.app is not None
