"""Reading TOML: the package's reviewed data tables and users' own files."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from itb.domain.errors import InvalidValue

__all__ = ["load_data_table", "read_toml_file"]


def load_data_table(name: str) -> dict[str, Any]:
    """Load ``itb/data/<name>.toml`` (reviewed clinical and device data)."""
    ref = resources.files("itb.data").joinpath(f"{name}.toml")
    with ref.open("rb") as fh:
        return tomllib.load(fh)


def read_toml_file(path: Path, *, field: str = "file") -> dict[str, Any]:
    """Read a user's TOML file.

    Raises:
        InvalidValue: the file is missing, unreadable or not valid TOML (one-line message).
    """
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InvalidValue(field, str(path), "an existing TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidValue(field, str(path), f"valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise InvalidValue(field, str(path), "a UTF-8 text TOML file") from None
    except OSError as exc:
        raise InvalidValue(field, str(path), f"a readable TOML file ({exc.strerror})") from None
