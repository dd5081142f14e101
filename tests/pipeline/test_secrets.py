"""Secrets never reach history, search attributes, logs or manifests.

The history is exported with the official `temporal workflow show` (what an operator would
look at), the logs are captured with structlog's `capture_logs` while a job runs, and the
manifest is read from storage.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import structlog
from structlog.testing import capture_logs
from temporalio.client import Client

from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.models import GenerationRequest, Outcome
from seedance_pipeline.observability.logging import REDACTED, RedactSecrets, secret_values
from seedance_pipeline.stack.binaries import temporal_cli
from tests.pipeline.conftest import API_KEY, CALLBACK_SECRET, Pipeline

SECRETS = (API_KEY, CALLBACK_SECRET)


async def temporal_show(client: Client, job_id: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        temporal_cli(),
        "workflow",
        "show",
        "--workflow-id",
        job_id,
        "--address",
        client.service_client.config.target_host,
        "--output",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    return out.decode() + "\n" + "\n".join(_decoded_payloads(json.loads(out)))


def _decoded_payloads(node: Any) -> list[str]:
    """Payload bodies are base64 in the JSON export: decode every `data` so the search sees
    what history really holds."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "data" and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    found.append(base64.b64decode(value).decode("utf-8", "replace"))
            else:
                found += _decoded_payloads(value)
    elif isinstance(node, list):
        for item in node:
            found += _decoded_payloads(item)
    return found


async def test_history_logs_and_manifest_hold_no_secret(client: Client, pipeline: Pipeline) -> None:
    with capture_logs() as logs:
        record = await pipeline.run(
            GenerationRequest(prompt="secrets check", duration=4, resolution="480p")
        )
    assert record.outcome == Outcome.SUCCEEDED, record.error
    assert record.callbacks_received >= 1, "callbacks carried the token through history"

    history = await temporal_show(client, record.job_id)
    assert record.provider_task_id and record.provider_task_id in history  # a real export
    manifest = Path(urlsplit(record.manifest_uri or "").path).read_text()
    described = await client.get_workflow_handle(record.job_id).describe()
    attributes = str(described.typed_search_attributes)
    assert logs, "the activities logged through structlog"
    for secret in SECRETS:
        assert secret not in history
        assert secret not in manifest
        assert secret not in attributes
        assert secret not in str(logs)
        assert secret not in record.model_dump_json()


def test_redaction_processor_scrubs_keys_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key pasted into any field, nested or not, is replaced before rendering."""
    monkeypatch.setenv("ARK_API_KEY", API_KEY)
    monkeypatch.setenv("SEEDANCE_CALLBACK_SECRET", CALLBACK_SECRET)
    redact = RedactSecrets(secret_values(load_settings()))
    event = redact(
        None,
        "info",
        {
            "event": f"failed with Bearer {API_KEY}",
            "nested": {"list": [f"x{CALLBACK_SECRET}y", 3]},
        },
    )
    assert API_KEY not in str(event) and CALLBACK_SECRET not in str(event)
    assert event["event"] == f"failed with Bearer {REDACTED}"


def test_configured_logging_renders_redacted_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from seedance_pipeline.observability.logging import configure_logging

    monkeypatch.setenv("ARK_API_KEY", API_KEY)
    configure_logging(load_settings())
    try:
        structlog.get_logger("t").info("oops", detail=f"key={API_KEY}", job_id="j1")
        err = capsys.readouterr().err
    finally:
        structlog.reset_defaults()
    assert '"job_id": "j1"' in err and API_KEY not in err and REDACTED in err
