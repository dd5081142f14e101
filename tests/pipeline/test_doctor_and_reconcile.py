"""`doctor` and `reconcile` answered by the worker through Temporal: the worker's checks
beside the CLI's, reconcile's findings computed where the keys are, and a missing worker
said in one line instead of a wait."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from temporalio.client import Client

from seedance_pipeline.core.models import GenerationRequest
from tests.clients.support import acli
from tests.pipeline.conftest import Pipeline


@pytest.fixture
def shell(client: Client, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("SEEDANCE_TEMPORAL__TASK_QUEUE", pipeline.settings.temporal.task_queue)
    yield


async def test_doctor_shows_the_workers_own_checks(shell: None, pipeline: Pipeline) -> None:
    result = await acli("doctor", "--json")
    assert result.code == 0, result.out + result.err
    report = json.loads(result.out)
    assert report["ok"] is True
    worker = report["worker"]
    assert worker["job_queue"] == pipeline.settings.temporal.task_queue
    checks = {c["name"]: c for c in worker["checks"]}
    assert (
        checks["callbacks"]["status"] == "ok"
        and "answers the worker" in checks["callbacks"]["detail"]
    )
    assert checks["storage"]["detail"].startswith(f"writable (file://{pipeline.storage}")
    assert checks["queues"]["status"] == "ok"
    assert worker["polled"][pipeline.settings.temporal.task_queue] == ["workflow", "activity"]
    cli = {c["name"]: c["status"] for c in report["cli"]}
    # The pipeline's worker runs with test timings: the CLI says its model table differs.
    assert cli["worker"] == "ok" and cli["model table"] == "warn"


async def test_reconcile_runs_on_the_worker_and_finds_an_orphan(
    shell: None, pipeline: Pipeline
) -> None:
    record = await pipeline.run(GenerationRequest(prompt=f"reconciled {uuid.uuid4().hex[:6]}"))
    clean = await acli("reconcile", "--json")
    assert clean.code == 0, clean.out + clean.err
    report = json.loads(clean.out)
    assert sum(r["matched"] for r in report["routes"]) >= 1 and report["findings"] == []

    body = {"model": record.model_id, "content": [{"type": "text", "text": "behind our back"}]}
    async with pipeline.emulator.async_client() as http:
        made = await http.post("/contents/generations/tasks", json=body)
        orphan = made.json()["id"]
    flagged = await acli("reconcile", "--grace-minutes", "0", "--route", "byteplus")
    assert flagged.code == 1, flagged.out + flagged.err
    assert f"orphan: task {orphan}" in flagged.out

    unknown = await acli("reconcile", "--route", "nowhere")
    assert unknown.code == 2 and "unknown route 'nowhere'" in unknown.err


async def test_the_invoice_is_compared_with_the_workers_ledger(
    shell: None, pipeline: Pipeline, tmp_path: Path
) -> None:
    record = await pipeline.run(GenerationRequest(prompt=f"invoiced {uuid.uuid4().hex[:6]}"))
    assert record.finished_at and record.tokens and record.cost is not None
    day = record.finished_at.astimezone(UTC).date().isoformat()
    invoice = tmp_path / "invoice.csv"
    invoice.write_text(
        "date,model,tokens,amount,currency\n"
        f"{day},{record.model_id},{record.tokens},{record.cost:.6f},{record.currency}\n"
    )
    agreed = await acli("reconcile", "--no-provider", "--invoice", str(invoice), "--json")
    assert agreed.code == 0, agreed.out + agreed.err
    assert [c["status"] for c in json.loads(agreed.out)["invoice"]] == ["ok"]
    invoice.write_text(
        "date,model,tokens,amount,currency\n"
        f"{day},{record.model_id},{record.tokens + 1},{record.cost:.6f},{record.currency}\n"
    )
    differs = await acli("reconcile", "--no-provider", "--invoice", str(invoice))
    assert differs.code == 1 and "invoice_mismatch" in differs.out


async def test_no_worker_is_one_line_not_a_wait(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("SEEDANCE_TEMPORAL__TASK_QUEUE", queue)
    began = time.monotonic()
    doctor = await acli("doctor")
    reconcile = await acli("reconcile")
    assert time.monotonic() - began < 15
    assert doctor.code == 1 and f"FAIL worker: no worker polls {queue}" in doctor.out
    assert reconcile.code == 5
    errors = [line for line in reconcile.err.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and f"no worker polls {queue}" in errors[0]

    job = f"unworked-{uuid.uuid4().hex[:8]}"
    started = await acli("generate", "nobody runs me", "--job-id", job)
    assert started.code == 0 and f"warning: no worker polls {queue}" in started.err
    assert "jobs start when one does" in started.err
    extend = await acli("extend", job, "--minutes", "5")
    assert extend.code == 5 and f"no worker polls {queue}" in extend.err
    cancel = await acli("cancel", job)
    assert cancel.code == 0 and f"cancellation requested for {job}" in cancel.out
    assert "the job is cancelled when one does" in cancel.err
    assert time.monotonic() - began < 30
    await client.get_workflow_handle(job).terminate("test done")
