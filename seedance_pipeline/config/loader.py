"""Load the settings: the TOML file (`SEEDANCE_CONFIG` or the packaged default), then the
environment (`SEEDANCE_*`, nested with `__`), into `core.settings.Settings`.

The reading lives here, outside `core/` (which stays pure): every process (worker, webhook,
API, CLI, tests) loads through `load_settings`, and every problem becomes one `ConfigError`
that names the entry, and the variable when a variable set it, never its value.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from seedance_pipeline.core.settings import ConfigError, Settings

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent / "seedance.toml"
CONFIG_ENV = "SEEDANCE_CONFIG"


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load the TOML file (SEEDANCE_CONFIG or the packaged default), then the environment.

    `overrides` are deep-merged over the file (tests use them); environment variables win over
    both. Any problem raises ConfigError with the offending entries named.
    """
    chosen = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)
    try:
        data = tomllib.loads(chosen.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {chosen}") from None
    except OSError as exc:
        raise ConfigError(f"config file {chosen} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {chosen} is not UTF-8 text (byte {exc.start}): not valid TOML"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {chosen} is not valid TOML: {exc}") from None
    merged = _deep_merge(data, overrides)
    # Settings(**merged) would take `_env_file`, `_cli_parse_args`, ... as pydantic-settings'
    # own options (read a file as dotenv, parse argv) instead of refusing them as unknown keys.
    unknown = sorted(key for key in merged if key not in Settings.model_fields)
    if unknown:
        known = ", ".join(Settings.model_fields)
        raise ConfigError(
            f"invalid configuration in {chosen}: unknown top-level keys {unknown} (known: {known})"
        )
    try:
        return Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration in {chosen}: {_describe(exc)}") from None
    except SettingsError as exc:
        # A SEEDANCE_* variable that is not valid JSON for a table or list field.
        raise ConfigError(f"invalid environment override: {_env_suspects(exc)}") from None


def _env_suspects(exc: SettingsError) -> str:
    """pydantic-settings names only the top-level field; name the variables (and the keys
    they set) that feed it, without their values (a value may be a secret)."""
    found = re.search(r'field "([^"]+)"', str(exc))
    field = found.group(1) if found else ""
    prefix = f"SEEDANCE_{field}".upper()
    names = sorted(n for n in os.environ if field and n.upper().startswith(prefix))
    if not names:
        return str(exc)
    keys = [n[len("SEEDANCE_") :].lower().replace("__", ".") for n in names]
    pairs = ", ".join(f"{n} ({k})" for n, k in zip(names, keys, strict=True))
    return f"not valid JSON for the field {field!r}: check {pairs}"


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        source = _env_source(err["loc"])
        if source:
            where += f" (from {source})"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _env_source(loc: tuple[int | str, ...]) -> str | None:
    """The SEEDANCE_* variable that set this entry, when one did: the fix is there, not in
    the file the message names."""
    for depth in range(len(loc), 0, -1):
        name = "SEEDANCE_" + "__".join(str(p) for p in loc[:depth]).upper()
        if any(key.upper() == name for key in os.environ):
            return name
    return None
