"""Attacks the config loader with broken files: generated mutations of the packaged TOML (keys
deleted, wrong types, unknown keys, pydantic-settings' own `_`-prefixed init options, bad or
foreign model IDs, negative prices), garbage bytes, a directory in place of a file, and bad
JSON in `SEEDANCE_*` variables.

`load_settings` must either load or raise `ConfigError` whose message names the offending key;
no other exception type may escape (the starter maps ConfigError to exit code 2, anything else
is a traceback).
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from seedance_pipeline.config.loader import DEFAULT_CONFIG_PATH, load_settings
from seedance_pipeline.core.settings import ConfigError, Settings
from tests.security.toml_text import dumps

BASE: dict[str, Any] = tomllib.loads(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
FUZZ = settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _paths(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path of the tree (tables and leaves)."""
    found: list[tuple[str, ...]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((*prefix, key))
            found += _paths(value, (*prefix, key))
    return found


def _tables(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix] if isinstance(node, dict) else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _tables(value, (*prefix, key))
    return found


PATHS = _paths(BASE)
TABLES = _tables(BASE)
MODEL_ID_PATHS = [p for p in PATHS if len(p) == 4 and p[0] == "models" and p[2] == "ids"]
PRICE_PATHS = [p for p in PATHS if len(p) == 5 and p[0] == "models" and p[2] == "prices"]

keys = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12
).filter(lambda k: k.strip() == k and k != "")
scalars = st.one_of(
    st.just("null"),  # TOML has no null: a string stands in for it
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
bad_model_ids = st.one_of(
    st.sampled_from(["", " ", "doubao-seedance-2-0-mini-260615", "dreamina-x", "a/b", "a b"]),
    st.text(max_size=40),
)


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _delete(data: dict[str, Any], path: tuple[str, ...]) -> None:
    node = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]


@st.composite
def mutations(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[str, ...]]]:
    """(mutated config, the paths touched) after one to three mutations; an error must name
    the last key of at least one of them."""
    data = copy.deepcopy(BASE)
    touched: list[tuple[str, ...]] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "retype", "unknown", "model_id", "price"]))
        try:
            if kind == "delete":
                path = draw(st.sampled_from(_paths(data)))
                _delete(data, path)
            elif kind == "retype":
                path = draw(st.sampled_from(_paths(data)))
                _set(data, path, draw(values))
            elif kind == "unknown":
                table = draw(st.sampled_from(_tables(data)))
                key = draw(st.one_of(keys, st.sampled_from(["_env_prefix", "_env_file", "_x"])))
                path = (*table, key)
                _set(data, path, draw(values))
            elif kind == "model_id":
                path = draw(st.sampled_from(MODEL_ID_PATHS))
                _set(data, path, draw(bad_model_ids))
            else:
                path = draw(st.sampled_from(PRICE_PATHS))
                _set(data, path, draw(st.floats(max_value=-1e-9) | st.integers(max_value=-1)))
        except (KeyError, TypeError, IndexError):
            continue  # an earlier mutation removed or replaced the parent: nothing to do
        touched.append(path)
    assume(touched)
    return data, touched


def _names(message: str, key: str) -> bool:
    """The key appears as is, or as its repr (control characters escaped)."""
    return key in message or repr(key) in message


def _load(tmp_path: Path, text: str | bytes) -> Settings:
    path = tmp_path / "seedance.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return load_settings(path)


@FUZZ
@given(mutations())
@example(({**BASE, "_env_prefix": 5}, [("_env_prefix",)]))
@example(({**BASE, "_env_file": "/etc/passwd"}, [("_env_file",)]))
@example(({**BASE, "_cli_parse_args": True}, [("_cli_parse_args",)]))
def test_mutated_config_loads_or_names_the_key(
    tmp_path: Path, mutated: tuple[dict[str, Any], list[tuple[str, ...]]]
) -> None:
    data, touched = mutated
    try:
        _load(tmp_path, dumps(data))
    except ConfigError as exc:
        message = str(exc)
        assert any(_names(message, path[-1]) for path in touched), (touched, message)


@pytest.mark.parametrize(
    ("touched", "value"),
    [
        (("models", "mini", "prices", "byteplus", "standard"), -3.5),
        (("models", "mini", "ids", "byteplus"), "doubao-seedance-2-0-mini-260615"),
        (("models", "mini", "ids", "byteplus"), ""),
        (("models", "mini", "ids", "byteplus"), "dreamina seedance"),
        (("models", "mini", "duration_max"), "fifteen"),
        (("routes", "byteplus", "currency"), "EUR"),
        (("retries", "create_attempts"), 0),
        (("_env_file",), "/etc/passwd"),
        (("routes", "byteplus", "color"), "red"),
    ],
)
def test_known_bad_entries_are_refused_by_name(
    tmp_path: Path, touched: tuple[str, ...], value: Any
) -> None:
    """The mutations that must never load (not merely "may fail"), each named in the error."""
    data = copy.deepcopy(BASE)
    _set(data, touched, value)
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, dumps(data))
    assert touched[-1] in str(info.value)


@FUZZ
@given(st.binary(max_size=600))
@example(b"\xff\xfe\x00garbage\x80")
@example(b"[models]\nmini = \xff\n")
@example(b"\x00" * 50)
def test_garbage_bytes_raise_config_error(tmp_path: Path, raw: bytes) -> None:
    """Random bytes are (almost always) not a config; whatever they are, only ConfigError."""
    try:
        _load(tmp_path, raw)
    except ConfigError as exc:
        assert "seedance.toml" in str(exc)


@FUZZ
@given(st.binary(min_size=1, max_size=40), st.integers(0, 10_000))
def test_packaged_file_with_bytes_spliced_in(tmp_path: Path, junk: bytes, at: int) -> None:
    text = DEFAULT_CONFIG_PATH.read_bytes()
    at %= len(text)
    try:
        _load(tmp_path, text[:at] + junk + text[at:])
    except ConfigError as exc:
        assert "seedance.toml" in str(exc)  # says which file, and (TOML errors) where in it


def test_a_directory_in_place_of_the_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("SEEDANCE_ROUTES", "{not json", "routes"),
        ("SEEDANCE_MODELS__MINI__RESOLUTIONS", "[480p", "resolutions"),
        ("SEEDANCE_RETRIES__CREATE_ATTEMPTS", "many", "create_attempts"),
        ("SEEDANCE_REFERENCES__ALLOW_PRIVATE_HOSTS", "perhaps", "allow_private_hosts"),
    ],
)
def test_bad_environment_overrides_are_config_errors(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, named: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert named in str(info.value)
