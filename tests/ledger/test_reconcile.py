"""`reconcile` against a real emulator: tasks made behind the pipeline's back, tasks deleted
from under a job, token disagreements; then the invoice comparison and the CLI's exit codes.

Ledger rows are written directly: what is under test is the comparison, not the workflow.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from seedance_pipeline.adapters.ledger import open_ledger
from seedance_pipeline.adapters.provider_client import ProviderClient
from seedance_pipeline.clients.costs_cli import app
from seedance_pipeline.clients.reconcile import (
    InvoiceError,
    ReconcileReport,
    read_invoice,
    reconcile_invoice,
    reconcile_provider,
)
from seedance_pipeline.core.settings import Settings, load_settings
from seedance_pipeline.emulator.testing import EmulatorHandle, running_emulator
from tests.ledger.support import entry

MINI = "dreamina-seedance-2-0-mini-260615"
PRO = "dreamina-seedance-2-0-260128"
GRACE_NONE = timedelta(0)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    with running_emulator(
        data_dir=tmp_path_factory.mktemp("emulator"),
        queue_seconds=0.05,
        run_seconds=0.1,
        prewarm_media=False,
    ) as handle:
        yield handle


@pytest.fixture
def settings(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Both routes on the emulator; only BytePlus has a key (Volcengine is skipped)."""
    monkeypatch.setenv("ARK_API_KEY", emulator.api_key)
    monkeypatch.delenv("VOLC_ARK_API_KEY", raising=False)
    routes = {n: {"base_url": emulator.api_base} for n in ("byteplus", "volcengine")}
    return load_settings(routes=routes)


@pytest.fixture
async def provider() -> AsyncIterator[ProviderClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield ProviderClient(http)


async def make_task(
    emulator: EmulatorHandle, prompt: str, model: str = MINI, *, finish: bool = True
) -> dict[str, Any]:
    """Create a task straight on the provider, as someone with our key could."""
    body = {"model": model, "content": [{"type": "text", "text": prompt}], "duration": 5}
    async with emulator.async_client() as client:
        created = await client.post("/contents/generations/tasks", json=body)
        created.raise_for_status()
        task_id = created.json()["id"]
        for _ in range(100):
            task: dict[str, Any] = (
                await client.get(f"/contents/generations/tasks/{task_id}")
            ).json()
            if not finish or task["status"] in ("succeeded", "failed", "expired"):
                return task
            await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


def row_for(job_id: str, task: dict[str, Any], **fields: Any) -> Any:
    now = datetime.now(UTC)
    tokens = task["usage"]["completion_tokens"]
    values: dict[str, Any] = {
        "provider_task_id": task["id"],
        "model_id": task["model"],
        "tokens": tokens,
        "billed": tokens > 0,
        "cost": round(tokens * 3.5 / 1e6, 6),
        "finished_at": now,
    }
    values.update(fields)
    return entry(job_id, **values)


async def test_orphans_deleted_tasks_and_token_mismatches(
    emulator: EmulatorHandle, settings: Settings, provider: ProviderClient, tmp_path: Path
) -> None:
    await emulator.areset()
    ok, deleted, off, orphan = await asyncio.gather(
        *(make_task(emulator, f"reconcile {name}") for name in ("ok", "deleted", "off", "orphan"))
    )
    await emulator.aset_faults(
        [{"kind": "stuck", "phase": "queued", "match": {"prompt_contains": "stuck"}}]
    )
    stuck = await make_task(emulator, "reconcile stuck", finish=False)
    async with emulator.async_client() as client:
        (await client.delete(f"/contents/generations/tasks/{deleted['id']}")).raise_for_status()

    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    ledger.upsert(row_for("job-ok", ok))
    ledger.upsert(row_for("job-deleted", deleted))
    ledger.upsert(row_for("job-off", off, tokens=off["usage"]["completion_tokens"] + 900))

    async def owners(task_ids: list[str]) -> dict[str, str]:
        return {stuck["id"]: "job-running"} if stuck["id"] in task_ids else {}

    report = ReconcileReport(now=datetime.now(UTC), provider_since=None)
    await reconcile_provider(
        report, settings, ledger, provider, None, owners=owners, grace=GRACE_NONE
    )
    ledger.close()

    found = {(f.kind, f.task_id) for f in report.findings}
    assert found == {
        ("orphan", orphan["id"]),
        ("unknown_task", deleted["id"]),
        ("token_mismatch", off["id"]),
    }
    messages = "\n".join(f.message for f in report.findings)
    assert (
        f"task {orphan['id']} ({MINI}, succeeded, 108,900 billed tokens) belongs to no job"
        in messages
    )
    assert f"job job-deleted attempt 1: the provider does not know task {deleted['id']}" in messages
    assert "ledger 109,800 tokens (billed), provider task" in messages  # 24·d+1 (C6) + 900
    assert report.matched == 1 and report.routes_checked == ["byteplus"]
    assert report.in_flight == [f"{stuck['id']} ({MINI}, queued, job job-running)"]
    assert any("volcengine: no API key, no rows" in n for n in report.notes)
    assert report.exit_code == 1


async def test_a_recent_task_is_in_flight_and_an_unclaimed_stuck_one_is_an_orphan(
    emulator: EmulatorHandle, settings: Settings, provider: ProviderClient, tmp_path: Path
) -> None:
    await emulator.areset()
    await emulator.aset_faults([{"kind": "stuck", "phase": "queued"}])
    stuck = await make_task(emulator, "nobody's", model=PRO, finish=False)
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")

    async def nobody(task_ids: list[str]) -> dict[str, str]:
        return {}

    recent = ReconcileReport(now=datetime.now(UTC), provider_since=None)
    await reconcile_provider(recent, settings, ledger, provider, None, owners=nobody)
    assert (recent.findings, recent.exit_code) == ([], 0)
    assert recent.in_flight == [f"{stuck['id']} ({PRO}, queued)"]

    late = ReconcileReport(now=datetime.now(UTC) + timedelta(hours=2), provider_since=None)
    await reconcile_provider(late, settings, ledger, provider, None, owners=nobody)
    ledger.close()
    assert [(f.kind, f.task_id) for f in late.findings] == [("orphan", stuck["id"])]


async def test_a_route_with_rows_but_no_key_cannot_be_checked(
    emulator: EmulatorHandle, settings: Settings, provider: ProviderClient, tmp_path: Path
) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    ledger.upsert(
        entry("cny-job", route="volcengine", currency="CNY", finished_at=datetime.now(UTC))
    )
    report = ReconcileReport(now=datetime.now(UTC), provider_since=None)
    await reconcile_provider(report, settings, ledger, provider, None, grace=GRACE_NONE)
    ledger.close()
    assert [f.kind for f in report.findings] == ["unchecked"]
    assert "set VOLC_ARK_API_KEY" in report.findings[0].message
    assert report.exit_code == 2


async def test_rows_older_than_the_provider_window_are_not_judged(
    emulator: EmulatorHandle, settings: Settings, provider: ProviderClient, tmp_path: Path
) -> None:
    """The list endpoint shows 7 days; a task from 8 days ago is gone, not missing."""
    await emulator.areset()
    now = datetime.now(UTC)
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    old = now - timedelta(days=8)
    ledger.upsert(entry("old", requested_at=old, finished_at=now - timedelta(days=6, hours=23)))
    ledger.upsert(entry("new", requested_at=now - timedelta(days=6), finished_at=now))
    report = ReconcileReport(now=now, provider_since=None)
    await reconcile_provider(report, settings, ledger, provider, now - timedelta(days=30))
    ledger.close()
    assert [(f.kind, f.job_id) for f in report.findings] == [("unknown_task", "new")]
    assert report.provider_since == now - timedelta(days=7)
    assert any("only the last 7 days" in n for n in report.notes)


# ---- invoice ---------------------------------------------------------------------------


def write_invoice(path: Path, *lines: str) -> Path:
    path.write_text("date,model,tokens,amount,currency\n" + "".join(f"{x}\n" for x in lines))
    return path


def invoice_ledger(url: str) -> None:
    ledger = open_ledger(url)
    day1 = datetime(2026, 11, 1, 23, 30, tzinfo=UTC)
    ledger.upsert(entry("a", finished_at=day1))
    ledger.upsert(entry("b", finished_at=day1, tokens=216_000, cost=0.756))
    ledger.upsert(entry("c", finished_at=day1 + timedelta(hours=1), model_id=PRO, cost=0.756))
    ledger.upsert(entry("free", finished_at=day1, billed=False, tokens=0, cost=0.0))
    ledger.close()


async def test_invoice_totals_per_model_and_day(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    invoice_ledger(url)
    lines = read_invoice(
        write_invoice(
            tmp_path / "invoice.csv",
            f"2026-11-01,{MINI},200000,0.70,USD",
            f"2026-11-01,{MINI},124000,0.434,USD",  # same day and model: summed
            f"2026-11-02,{PRO},108000,0.80,USD",  # 4 cents more than our 0.756
            f"2026-11-02,{MINI},5,0.01,USD",  # not in our ledger at all
        )
    )
    ledger = open_ledger(url)
    report = ReconcileReport(now=datetime.now(UTC), provider_since=None)
    await reconcile_invoice(report, ledger, lines)
    ledger.close()
    statuses = [(c.day.isoformat(), c.model, c.status(report.tolerance)) for c in report.invoice]
    assert statuses == [
        ("2026-11-01", MINI, "ok"),
        ("2026-11-02", PRO, "mismatch"),
        ("2026-11-02", MINI, "missing_in_ledger"),
    ]
    assert report.findings[0].message == (
        f"2026-11-02 {PRO} USD: mismatch: ledger 108,000 tokens / 0.756000, "
        "invoice 108,000 tokens / 0.800000"
    )
    assert [f.kind for f in report.findings] == ["invoice_mismatch", "invoice_mismatch"]
    assert report.exit_code == 1


async def test_invoice_days_follow_the_invoice_time_zone(tmp_path: Path) -> None:
    """23:30 UTC on 1 Nov is 2 Nov in Beijing: a UTC+8 invoice books it on the 2nd."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    invoice_ledger(url)
    lines = read_invoice(
        write_invoice(
            tmp_path / "invoice.csv",
            f"2026-11-02,{MINI},324000,1.134,USD",
            f"2026-11-02,{PRO},108000,0.756,USD",
        )
    )
    ledger = open_ledger(url)
    report = ReconcileReport(now=datetime.now(UTC), provider_since=None)
    await reconcile_invoice(report, ledger, lines, invoice_timezone="Asia/Shanghai")
    ledger.close()
    assert report.findings == []
    assert [c.status(report.tolerance) for c in report.invoice] == ["ok", "ok"]


def test_a_malformed_invoice_names_the_line(tmp_path: Path) -> None:
    path = write_invoice(
        tmp_path / "bad.csv", f"2026-11-01,{MINI},100,0.1,USD", "2026-11-02,x,lots,1,USD"
    )
    with pytest.raises(InvoiceError, match="line 3"):
        read_invoice(path)
    (tmp_path / "nohead.csv").write_text("day,model,tokens\n")
    with pytest.raises(InvoiceError, match="header lacks date, amount, currency"):
        read_invoice(tmp_path / "nohead.csv")


# ---- CLI -------------------------------------------------------------------------------


def test_cli_exit_codes_say_what_does_not_match(
    emulator: EmulatorHandle, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    monkeypatch.setenv("SEEDANCE_LEDGER__URL", url)
    monkeypatch.setenv("SEEDANCE_ROUTES__BYTEPLUS__BASE_URL", emulator.api_base)
    emulator.reset()
    invoice_ledger(url)
    good = write_invoice(
        tmp_path / "good.csv",
        f"2026-11-01,{MINI},324000,1.134,USD",
        f"2026-11-02,{PRO},108000,0.756,USD",
    )
    runner = CliRunner()
    clean = runner.invoke(app, ["reconcile", "--no-temporal", "--invoice", str(good)])
    assert clean.exit_code == 0, clean.output
    assert "no mismatch found" in clean.stdout

    orphan = asyncio.run(make_task(emulator, "made behind our back"))
    flagged = runner.invoke(app, ["reconcile", "--no-temporal", "--grace-minutes", "0", "--json"])
    assert flagged.exit_code == 1, flagged.output
    report = json.loads(flagged.stdout)
    assert [(f["kind"], f["task_id"]) for f in report["findings"]] == [("orphan", orphan["id"])]

    monkeypatch.delenv("ARK_API_KEY")
    blind = runner.invoke(app, ["reconcile", "--no-temporal"])
    assert blind.exit_code == 2, blind.output
    assert "no route has an API key" in blind.stdout

    missing = runner.invoke(app, ["reconcile", "--invoice", str(tmp_path / "none.csv")])
    assert missing.exit_code == 2
    assert "cannot read invoice" in missing.output
