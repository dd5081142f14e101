"""The worker's own doctor checks, each piece broken on purpose: every failure is named with
its fix, a route nobody uses without a key is a warning, and no key ever appears."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from seedance_pipeline.activities.worker_checks import WorkerCheckActivities
from seedance_pipeline.adapters.ledger import open_ledger
from seedance_pipeline.adapters.object_store import open_store
from seedance_pipeline.adapters.provider_client import ProviderClient
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.checks import CheckStatus, WorkerChecksInput, WorkerReport
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.emulator.testing import EmulatorHandle

WRONG_KEY = "ek-wrong-key-000000-abcdef"


async def checks_of(
    client: Client, settings: Settings, store_uri: str, ledger_url: str, *, close_ledger: bool
) -> WorkerReport:
    ledger = open_ledger(ledger_url)
    if close_ledger:
        ledger.close()
    async with httpx.AsyncClient(timeout=5) as http:
        acts = WorkerCheckActivities(
            client,
            settings,
            http,
            ProviderClient(http),
            open_store(store_uri),
            ledger,
        )
        report = await ActivityEnvironment().run(acts.worker_checks, WorkerChecksInput())
    if not close_ledger:
        ledger.close()
    return report


@pytest.fixture
async def healthy(
    client: Client, emulator: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[WorkerReport]:
    monkeypatch.setenv("ARK_API_KEY", emulator.api_key)
    monkeypatch.delenv("VOLC_ARK_API_KEY", raising=False)
    settings = load_settings(
        routes={n: {"base_url": emulator.api_base} for n in ("byteplus", "volcengine")}
    )
    yield await checks_of(
        client,
        settings,
        str(tmp_path / "outputs"),
        f"sqlite:///{tmp_path / 'l.db'}",
        close_ledger=False,
    )


def by_name(report: WorkerReport) -> dict[str, tuple[CheckStatus, str, str]]:
    return {c.name: (c.status, c.detail, c.fix) for c in report.checks}


async def test_working_pieces_pass_and_an_unused_route_without_key_warns(
    healthy: WorkerReport,
) -> None:
    checks = by_name(healthy)
    assert checks["route byteplus"][0] == CheckStatus.OK
    assert "key in $ARK_API_KEY accepted" in checks["route byteplus"][1]
    assert checks["route volcengine"][:2] == (
        CheckStatus.WARN,
        "no key in $VOLC_ARK_API_KEY: jobs asking for it fail",
    )
    assert checks["storage"][0] == checks["ledger"][0] == CheckStatus.OK
    assert checks["callbacks"][0] == CheckStatus.OK  # off in the default config: jobs poll
    # No worker of this test polls the default queues: the check says which it does not.
    assert (
        checks["queues"][0] == CheckStatus.FAIL
        and "seedance-jobs (workflow)" in checks["queues"][1]
    )
    assert healthy.models_digest


async def test_each_broken_piece_is_named_with_its_fix(
    client: Client, emulator: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARK_API_KEY", WRONG_KEY)
    monkeypatch.delenv("SEEDANCE_CALLBACK_SECRET", raising=False)
    settings = load_settings(
        routes={n: {"base_url": emulator.api_base} for n in ("byteplus", "volcengine")},
        callbacks={"base_url": "http://127.0.0.1:1"},
    )
    report = await checks_of(
        client,
        settings,
        "/proc/nope/outputs",
        f"sqlite:///{tmp_path / 'l.db'}",
        close_ledger=True,
    )
    checks = by_name(report)
    for name in ("route byteplus", "storage", "ledger", "callbacks"):
        status, detail, fix = checks[name]
        assert status == CheckStatus.FAIL and fix, (name, detail)
    assert "AuthenticationError" in checks["route byteplus"][1]
    assert "no secret in $SEEDANCE_CALLBACK_SECRET" in checks["callbacks"][1]
    assert not report.ok
    assert WRONG_KEY not in json.dumps(report.model_dump(mode="json"))

    monkeypatch.setenv("SEEDANCE_CALLBACK_SECRET", "a-callback-secret-0123456789")
    unreachable = await checks_of(
        client,
        settings,
        str(tmp_path / "outputs"),
        f"sqlite:///{tmp_path / 'l2.db'}",
        close_ledger=False,
    )
    assert (
        "http://127.0.0.1:1 is unreachable from the worker" in by_name(unreachable)["callbacks"][1]
    )


async def test_the_default_route_without_a_key_fails(
    client: Client, emulator: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARK_API_KEY", raising=False)
    settings = load_settings(routes={"byteplus": {"base_url": emulator.api_base}})
    report = await checks_of(
        client, settings, str(tmp_path / "o"), f"sqlite:///{tmp_path / 'l.db'}", close_ledger=False
    )
    status, detail, fix = by_name(report)["route byteplus"]
    assert status == CheckStatus.FAIL and "it is the default route" in detail
    assert fix == "export ARK_API_KEY=... where the worker runs"
