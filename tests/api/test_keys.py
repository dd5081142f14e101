"""API keys (hashed, looked up per request: rotation without restart) and signed sessions."""

from __future__ import annotations

from pathlib import Path

import pytest

from seedance_pipeline.api.keys import Sessions, hash_key, new_key, tenant_for_key
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.settings import ConfigError


def test_keys_rotate_by_editing_the_hash_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new, other = new_key(), new_key(), new_key()
    hashes = tmp_path / "acme.keys"
    hashes.write_text(hash_key(old) + "\n")
    monkeypatch.setenv("GLOBEX_HASHES", f"{hash_key(other)}, sha256:{'0' * 64}")
    settings = load_settings(
        api={
            "tenants": {
                "acme": {"key_hashes_file": str(hashes)},
                "globex": {"key_hashes_env": "GLOBEX_HASHES"},
            }
        }
    ).api
    assert tenant_for_key(settings, old) == "acme"
    assert tenant_for_key(settings, other) == "globex"
    assert tenant_for_key(settings, new) is None
    hashes.write_text(f"# rotated\n{hash_key(old)}\n{hash_key(new)}\n")  # both, while moving
    assert tenant_for_key(settings, new) == "acme"
    hashes.write_text(hash_key(new) + "\n")  # the old key is revoked, no restart
    assert tenant_for_key(settings, old) is None
    assert tenant_for_key(settings, "") is None
    assert old not in hashes.read_text()


def test_sessions_are_signed_expiring_and_typed() -> None:
    sessions = Sessions(b"k" * 32)
    token, _ = sessions.issue("acme", "session", 60)
    assert sessions.verify(token, "session") == "acme"
    assert sessions.verify(token, "page-link") is None  # a cookie is not a page link
    assert Sessions(b"x" * 32).verify(token, "session") is None
    payload, _, mac = token.partition(".")
    assert sessions.verify(payload + "x." + mac, "session") is None
    expired, _ = sessions.issue("acme", "session", -1)
    assert sessions.verify(expired, "session") is None


def test_tenant_names_and_their_budget_routes_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"api\.tenants\.Acme"):
        load_settings(api={"tenants": {"Acme": {}}})
    with pytest.raises(ConfigError, match=r"api\.tenants\.acme\.budgets\.nowhere"):
        load_settings(api={"tenants": {"acme": {"budgets": {"nowhere": {"daily": 1}}}}})
