"""The settings file (`hub.toml`): the environment's variables written down once, so the command
line finds its hub from any folder.

The command line reads it (`hub --config FILE`, or `hub.toml` in the working folder) and hands
its values to `load_settings`, which puts them under the environment's: a variable set in both
takes the environment's value. Keys are the variables' own names (`HUB_DATABASE_URL = "..."`),
so the README's list of variables is the file's list of keys too."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path

from hub.config import SettingsError

# The file the command line looks for in the working folder when --config is not given.
DEFAULT_NAME = "hub.toml"


def read_config_file(path: Path) -> dict[str, str]:
    """The variables `path` sets. Errors name the file (the path the user gave) and the key,
    never a value: a value may be a secret."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"the settings file {path} does not exist") from None
    except (OSError, UnicodeDecodeError):
        raise SettingsError(f"the settings file {path} cannot be read") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message names the line and column, never the value.
        raise SettingsError(f"the settings file {path} is not TOML ({exc})") from None
    values: dict[str, str] = {}
    for name, value in data.items():
        if isinstance(value, bool):
            values[name] = "on" if value else "off"
        elif isinstance(value, str | int | float):
            values[name] = str(value)
        else:
            raise SettingsError(
                f"the settings file {path}: {name} must be a text, a number or true/false, as its variable would be"
            )
    return values


def write_config_file(path: Path, values: Mapping[str, str], comment: str) -> None:
    """Write `values` as `NAME = "value"` lines under a `#` comment. A JSON string is a TOML
    basic string (same quotes and escapes), so json.dumps quotes each value."""
    lines = [f"# {line}" for line in comment.splitlines()]
    lines += [f"{name} = {json.dumps(value, ensure_ascii=False)}" for name, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
