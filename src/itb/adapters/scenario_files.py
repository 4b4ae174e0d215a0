"""The built-in scenario library: TOML files shipped in ``itb/data/scenarios``."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

from itb.domain.errors import InvalidValue

__all__ = ["builtin_scenario_names", "load_builtin_scenario_table", "load_builtin_scenario_text"]


def _folder() -> Any:
    return resources.files("itb.data").joinpath("scenarios")


def builtin_scenario_names() -> list[str]:
    """Names (file stems) of the built-in scenarios, sorted."""
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in _folder().iterdir()
        if entry.name.endswith(".toml")
    )


def load_builtin_scenario_table(name: str) -> dict[str, Any]:
    """The parsed TOML of built-in scenario ``name``.

    Raises:
        InvalidValue: no such built-in scenario (the message lists them).
    """
    names = builtin_scenario_names()
    if name not in names:
        raise InvalidValue("--builtin", name, ", ".join(names))
    with _folder().joinpath(f"{name}.toml").open("rb") as fh:
        return tomllib.load(fh)


def load_builtin_scenario_text(name: str) -> str:
    """The TOML text of built-in scenario ``name``, as written.

    Raises:
        InvalidValue: no such built-in scenario (the message lists them).
    """
    names = builtin_scenario_names()
    if name not in names:
        raise InvalidValue("--builtin", name, ", ".join(names))
    text: str = _folder().joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return text
