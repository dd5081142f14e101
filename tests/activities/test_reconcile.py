"""The reconcile activities against a real emulator, a real ledger and Temporal visibility:
tasks made behind the pipeline's back, tasks deleted from under a job, token disagreements,
the route's retention window, a route without a key, and the invoice comparison.

Ledger rows are written directly: what is under test is the comparison where the keys are,
not the job workflow. Activities run in `ActivityEnvironment` (heartbeats need a context).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from seedance_pipeline.activities.reconcile import ReconcileActivities
from seedance_pipeline.adapters.ledger import open_ledger
from seedance_pipeline.adapters.ledger_schema import Ledger
from seedance_pipeline.adapters.object_store import FileStore, safe_key
from seedance_pipeline.adapters.provider_client import ProviderClient
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.layout import VIDEO, key_parts
from seedance_pipeline.core.models import LedgerEntry
from seedance_pipeline.core.reconcile import (
    InvoiceReconcileInput,
    ProviderReconcileInput,
    RouteReconcile,
    parse_invoice,
)
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.emulator.testing import EmulatorHandle
from tests.adapters.ledger.support import entry

MINI = "dreamina-seedance-2-0-mini-260615"
PRO = "dreamina-seedance-2-0-260128"


@pytest.fixture
def settings(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Both routes on the emulator; only BytePlus has a key on this "worker"."""
    monkeypatch.setenv("ARK_API_KEY", emulator.api_key)
    monkeypatch.delenv("VOLC_ARK_API_KEY", raising=False)
    routes = {n: {"base_url": emulator.api_base} for n in ("byteplus", "volcengine")}
    return load_settings(routes=routes)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    store = open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield store
    store.close()


@pytest.fixture
async def acts(
    client: Client, settings: Settings, ledger: Ledger, tmp_path: Path
) -> AsyncIterator[ReconcileActivities]:
    async with httpx.AsyncClient(timeout=10) as http:
        store = FileStore(tmp_path / "outputs")
        yield ReconcileActivities(client, settings, ledger, ProviderClient(http), store)


async def provider_check(acts: ReconcileActivities, **fields: Any) -> dict[str, RouteReconcile]:
    routes = await ActivityEnvironment().run(
        acts.reconcile_provider, ProviderReconcileInput(**fields)
    )
    return {r.route: r for r in routes}


async def make_task(
    emulator: EmulatorHandle, prompt: str, model: str = MINI, *, finish: bool = True
) -> dict[str, Any]:
    """Create a task straight on the provider, as someone with our key could."""
    body = {"model": model, "content": [{"type": "text", "text": prompt}], "duration": 5}
    async with emulator.async_client() as http:
        created = await http.post("/contents/generations/tasks", json=body)
        created.raise_for_status()
        task_id = created.json()["id"]
        for _ in range(100):
            task: dict[str, Any] = (await http.get(f"/contents/generations/tasks/{task_id}")).json()
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


async def stored(tmp_path: Path, row: LedgerEntry, *, followed: bool = False) -> LedgerEntry:
    """Put the row's video where its job (or its follower) stores it."""
    parts = key_parts(
        row.job_id,
        row.requested_at,
        VIDEO,
        run=row.run,
        followed_submit_no=row.submit_no if followed else None,
    )
    await FileStore(tmp_path / "outputs").put_bytes(safe_key(*parts), b"mp4", "video/mp4")
    return row


async def test_orphans_deleted_tasks_and_token_mismatches(
    emulator: EmulatorHandle, acts: ReconcileActivities, ledger: Ledger, tmp_path: Path
) -> None:
    await emulator.areset()
    ok, deleted, off, orphan = await asyncio.gather(
        *(make_task(emulator, f"reconcile {name}") for name in ("ok", "deleted", "off", "orphan"))
    )
    async with emulator.async_client() as http:
        (await http.delete(f"/contents/generations/tasks/{deleted['id']}")).raise_for_status()
    ledger.upsert(await stored(tmp_path, row_for("job-ok", ok)))
    ledger.upsert(row_for("job-deleted", deleted))
    off_row = row_for("job-off", off, tokens=off["usage"]["completion_tokens"] + 900)
    ledger.upsert(await stored(tmp_path, off_row, followed=True))

    routes = await provider_check(acts, grace_seconds=0)

    byteplus = routes["byteplus"]
    found = {(f.kind, f.task_id) for f in byteplus.findings}
    assert found == {
        ("orphan", orphan["id"]),
        ("unknown_task", deleted["id"]),
        ("token_mismatch", off["id"]),
    }
    messages = "\n".join(f.message for f in byteplus.findings)
    assert (
        f"task {orphan['id']} ({MINI}, succeeded, 108,900 billed tokens) belongs to no job"
        in messages
    )
    assert f"job job-deleted attempt 1: the provider does not know task {deleted['id']}" in messages
    assert "ledger 109,800 tokens (billed), provider task" in messages
    orphaned = next(f for f in byteplus.findings if f.kind == "orphan")
    assert (orphaned.billed_tokens, orphaned.route) == (108_900, "byteplus")
    assert byteplus.checked and byteplus.matched == 1
    assert routes["volcengine"].notes == ["route volcengine: no API key, no rows; skipped"]


async def test_a_billed_success_without_its_stored_video_is_unstored(
    emulator: EmulatorHandle, acts: ReconcileActivities, ledger: Ledger
) -> None:
    """Recorded and billed, but in neither of its run's places in storage: copying while it
    is recent (in flight), then a finding that names the job, run and create."""
    await emulator.areset()
    task = await make_task(emulator, "reconcile unstored")
    ledger.upsert(row_for("job-lost", task, run="run-1"))

    recent = (await provider_check(acts, route="byteplus"))["byteplus"]
    assert recent.findings == []
    assert recent.in_flight == [f"{task['id']} ({MINI}, copying, job job-lost)"]

    judged = (await provider_check(acts, route="byteplus", grace_seconds=0))["byteplus"]
    [finding] = judged.findings
    assert (finding.kind, finding.job_id, finding.run, finding.submit_no) == (
        "unstored",
        "job-lost",
        "run-1",
        1,
    )
    assert finding.salvageable
    assert "of job job-lost run run-1 create 1 has no stored video" in finding.message


async def test_salvage_starts_one_follower_per_task_and_says_why_it_cannot(
    client: Client, emulator: EmulatorHandle, acts: ReconcileActivities, ledger: Ledger
) -> None:
    """No worker polls this test's task queue: what is checked is what gets started. An
    orphan gets its salvage follower (once, however often reconcile runs); a row whose job
    Temporal does not know cannot be salvaged into it, and the note says so."""
    await emulator.areset()
    orphan, lost = await asyncio.gather(
        make_task(emulator, "salvage orphan"), make_task(emulator, "salvage lost")
    )
    ledger.upsert(row_for("job-unknown-to-temporal", lost, run=str(uuid.uuid4())))

    first = await provider_check(acts, route="byteplus", grace_seconds=0, salvage=True)
    byteplus = first["byteplus"]
    salvage_id = f"task-salvage:byteplus:{orphan['id']}"
    try:
        assert byteplus.salvaged == [salvage_id]
        assert any(
            n.startswith(f"task {lost['id']}: not salvaged: cannot read job job-unknown-to")
            for n in byteplus.notes
        )
        started = await client.get_workflow_handle(salvage_id).describe()
        assert started.workflow_type == "TaskFollowerWorkflow"

        again = await provider_check(acts, route="byteplus", grace_seconds=0, salvage=True)
        assert again["byteplus"].salvaged == []
        assert any(f"{salvage_id} is still running" in n for n in again["byteplus"].notes)
    finally:
        await client.get_workflow_handle(salvage_id).terminate("test over")


async def test_a_recent_task_is_in_flight_and_an_unclaimed_stuck_one_is_an_orphan(
    emulator: EmulatorHandle, acts: ReconcileActivities
) -> None:
    await emulator.areset()
    await emulator.aset_faults([{"kind": "stuck", "phase": "queued"}])
    stuck = await make_task(emulator, "nobody's", model=PRO, finish=False)

    recent = (await provider_check(acts, route="byteplus"))["byteplus"]
    assert recent.findings == []
    assert recent.in_flight == [f"{stuck['id']} ({PRO}, queued)"]

    judged = (await provider_check(acts, route="byteplus", grace_seconds=0))["byteplus"]
    assert [(f.kind, f.task_id) for f in judged.findings] == [("orphan", stuck["id"])]


async def test_a_route_with_rows_but_no_key_cannot_be_checked(
    acts: ReconcileActivities, ledger: Ledger
) -> None:
    ledger.upsert(
        entry("cny-job", route="volcengine", currency="CNY", finished_at=datetime.now(UTC))
    )
    volc = (await provider_check(acts, route="volcengine", grace_seconds=0))["volcengine"]
    assert [f.kind for f in volc.findings] == ["unchecked"]
    assert "set VOLC_ARK_API_KEY" in volc.findings[0].message and not volc.checked


async def test_rows_older_than_the_route_retention_are_not_judged(
    emulator: EmulatorHandle, acts: ReconcileActivities, ledger: Ledger
) -> None:
    """The provider keeps tasks `retention_hours` (24 by default): a row from 25 hours ago
    has no task to find, which is not a finding; one from 2 hours ago is."""
    await emulator.areset()
    now = datetime.now(UTC)
    ledger.upsert(entry("old", requested_at=now - timedelta(hours=25), finished_at=now))
    ledger.upsert(entry("new", requested_at=now - timedelta(hours=2), finished_at=now))
    byteplus = (await provider_check(acts, route="byteplus", since=now - timedelta(days=30)))[
        "byteplus"
    ]
    assert [(f.kind, f.job_id) for f in byteplus.findings] == [("unknown_task", "new")]
    assert byteplus.retention_hours == 24
    assert byteplus.since is not None
    assert abs((byteplus.since - (now - timedelta(hours=24))).total_seconds()) < 60
    assert any("keeps tasks 24 h" in n for n in byteplus.notes)


async def test_a_longer_retention_widens_the_window(
    client: Client,
    emulator: EmulatorHandle,
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("ARK_API_KEY", emulator.api_key)
    week = load_settings(
        routes={"byteplus": {"base_url": emulator.api_base, "retention_hours": 168}}
    )
    await emulator.areset()
    now = datetime.now(UTC)
    ledger.upsert(entry("three-days", requested_at=now - timedelta(days=3), finished_at=now))
    async with httpx.AsyncClient(timeout=10) as http:
        acts = ReconcileActivities(
            client, week, ledger, ProviderClient(http), FileStore(tmp_path / "outputs")
        )
        byteplus = (await provider_check(acts, route="byteplus"))["byteplus"]
    assert [(f.kind, f.job_id) for f in byteplus.findings] == [("unknown_task", "three-days")]


async def test_an_unknown_route_is_refused_by_the_worker(acts: ReconcileActivities) -> None:
    with pytest.raises(ApplicationError) as refused:
        await provider_check(acts, route="nowhere")
    assert refused.value.type == et.REQUEST_INVALID and refused.value.non_retryable
    assert "unknown route 'nowhere'" in refused.value.message


# ---- invoice ---------------------------------------------------------------------------

INVOICE = "date,model,tokens,amount,currency\n"


def invoice_ledger(ledger: Ledger) -> None:
    day1 = datetime(2026, 11, 1, 23, 30, tzinfo=UTC)
    ledger.upsert(entry("a", finished_at=day1))
    ledger.upsert(entry("b", finished_at=day1, tokens=216_000, cost=0.756))
    ledger.upsert(entry("c", finished_at=day1 + timedelta(hours=1), model_id=PRO, cost=0.756))
    ledger.upsert(entry("free", finished_at=day1, billed=False, tokens=0, cost=0.0))


async def test_invoice_totals_per_model_and_day(acts: ReconcileActivities, ledger: Ledger) -> None:
    invoice_ledger(ledger)
    lines = parse_invoice(
        INVOICE
        + f"2026-11-01,{MINI},200000,0.70,USD\n"
        + f"2026-11-01,{MINI},124000,0.434,USD\n"  # same day and model: summed
        + f"2026-11-02,{PRO},108000,0.80,USD\n"  # 4 cents more than our 0.756
        + f"2026-11-02,{MINI},5,0.01,USD\n",  # not in our ledger at all
        "invoice.csv",
    )
    result = await ActivityEnvironment().run(
        acts.reconcile_invoice, InvoiceReconcileInput(lines=lines)
    )
    tolerance = Decimal("0.01")
    statuses = [(c.day.isoformat(), c.model, c.status(tolerance)) for c in result.comparisons]
    assert statuses == [
        ("2026-11-01", MINI, "ok"),
        ("2026-11-02", PRO, "mismatch"),
        ("2026-11-02", MINI, "missing_in_ledger"),
    ]
    assert result.findings[0].message == (
        f"2026-11-02 {PRO} USD: mismatch: ledger 108,000 tokens / 0.756000, "
        "invoice 108,000 tokens / 0.800000"
    )
    assert [f.kind for f in result.findings] == ["invoice_mismatch", "invoice_mismatch"]


async def test_invoice_days_follow_the_invoice_time_zone(
    acts: ReconcileActivities, ledger: Ledger
) -> None:
    """23:30 UTC on 1 Nov is 2 Nov in Beijing: a UTC+8 invoice books it on the 2nd."""
    invoice_ledger(ledger)
    lines = parse_invoice(
        INVOICE + f"2026-11-02,{MINI},324000,1.134,USD\n" + f"2026-11-02,{PRO},108000,0.756,USD\n",
        "invoice.csv",
    )
    result = await ActivityEnvironment().run(
        acts.reconcile_invoice, InvoiceReconcileInput(lines=lines, timezone="Asia/Shanghai")
    )
    assert result.findings == []
    assert [c.status(Decimal("0.01")) for c in result.comparisons] == ["ok", "ok"]


async def test_an_unknown_time_zone_is_refused_not_retried(acts: ReconcileActivities) -> None:
    lines = parse_invoice(INVOICE + f"2026-11-02,{MINI},1,0.1,USD\n", "invoice.csv")
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(
            acts.reconcile_invoice, InvoiceReconcileInput(lines=lines, timezone="Mars/Olympus")
        )
    assert refused.value.non_retryable and "Mars/Olympus" in refused.value.message
