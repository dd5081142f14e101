"""Attacks secrecy where jobs fail: a key the provider refuses (`auth_401`), and a provider that
echoes the API key or the callback secret in its error code and message (a buggy gateway, or a
hostile endpoint fishing for a leak). The API key and the callback secret must appear in no
search attribute, no failure message in the exported history (`temporal workflow show`), no
stored error (record, manifest, ledger) and no log line.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from structlog.testing import capture_logs
from temporalio.client import Client

from seedance_pipeline.core.models import GenerationRequest, JobRecord, Outcome
from tests.pipeline.conftest import API_KEY, CALLBACK_SECRET, Pipeline, PipelineFactory
from tests.pipeline.test_secrets import temporal_show
from tests.security.history import assert_no_workflow_task_failed

SECRETS = (API_KEY, CALLBACK_SECRET)
ONE_TRY = {"models": {"mini": {"fallback": None}}, "retries": {"task_attempts": 1}}


async def _everything_stored(client: Client, pipeline: Pipeline, record: JobRecord) -> str:
    """Every place a job leaves text: history export, search attributes, description, record,
    manifest and its ledger rows."""
    history = await temporal_show(client, record.job_id)
    described = await client.get_workflow_handle(record.job_id).describe()
    manifest = Path(urlsplit(record.manifest_uri or "").path).read_text()
    ledger_path = urlsplit(pipeline.settings.ledger.url).path
    rows: list[tuple[object, ...]] = []
    if Path(ledger_path).exists():  # the ledger file appears with the first billable attempt
        with sqlite3.connect(ledger_path) as db:
            rows = db.execute("SELECT * FROM ledger WHERE job_id = ?", (record.job_id,)).fetchall()
    return "\n".join(
        [
            history,
            str(described.typed_search_attributes),
            str(described.raw_description),
            record.model_dump_json(),
            manifest,
            repr(rows),
        ]
    )


async def test_a_refused_key_leaves_no_secret_behind(
    pipeline_factory: PipelineFactory, client: Client
) -> None:
    async with pipeline_factory(**ONE_TRY) as pipeline:
        await pipeline.emulator.aset_faults([{"kind": "auth_401", "match": {"api_key": API_KEY}}])
        with capture_logs() as logs:
            record = await pipeline.run(
                GenerationRequest(prompt=f"auth {uuid.uuid4().hex[:8]}", duration=4)
            )
        stored = await _everything_stored(client, pipeline, record)
    assert record.outcome == Outcome.FAILED_INPUT
    assert record.error is not None and record.error.code == "AuthenticationError"
    assert "AuthenticationError" in stored  # the export really holds the failure
    for secret in SECRETS:
        assert secret not in stored
        assert secret not in str(logs)
    await assert_no_workflow_task_failed(client, record.job_id)


async def test_a_provider_echoing_secrets_in_errors_is_scrubbed(
    pipeline_factory: PipelineFactory, client: Client
) -> None:
    """The task fails with the key in its code and both secrets in its message; the failed
    callback and the GET both carry them."""
    word = uuid.uuid4().hex[:8]
    async with pipeline_factory(**ONE_TRY) as pipeline:
        await pipeline.emulator.aset_faults(
            [
                {
                    "kind": "internal_failure",
                    "code": f"InternalServiceError.{API_KEY}",
                    "message": f"key {API_KEY} and callback secret {CALLBACK_SECRET} mismatch",
                    "match": {"prompt_contains": word},
                }
            ]
        )
        with capture_logs() as logs:
            record = await pipeline.run(GenerationRequest(prompt=f"echo {word}", duration=4))
        stored = await _everything_stored(client, pipeline, record)
    assert record.outcome == Outcome.FAILED_INFRA
    assert record.error is not None and record.error.message.startswith("key ")
    assert "mismatch" in stored and "InternalServiceError." in stored
    for secret in SECRETS:
        assert secret not in stored
        assert secret not in str(logs)
    await assert_no_workflow_task_failed(client, record.job_id)
