"""The OpenAPI document validates, the interactive docs are served, and a schemathesis run
against the live API (real Temporal, emulator and workers behind it) finds no 5xx and no
response that breaks the API's own schema. Bounded: it must finish in under 60 s."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import httpx
from openapi_spec_validator import validate

from tests.api.conftest import ApiFactory

BUDGET_SECONDS = 60
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


async def test_the_document_validates_and_the_docs_are_served(api_factory: ApiFactory) -> None:
    async with api_factory() as api, httpx.AsyncClient(base_url=api.url) as http:
        document = (await http.get("/openapi.json")).json()
        validate(document)
        paths = set(document["paths"])
        assert {
            "/v1/jobs",
            "/v1/jobs/{job_id}",
            "/v1/jobs/{job_id}/cancel",
            "/v1/jobs/{job_id}/video",
            "/v1/jobs/{job_id}/last-frame",
            "/v1/estimate",
            "/v1/batches",
            "/v1/batches/{batch_id}",
            "/v1/costs",
            "/healthz",
            "/readyz",
        } <= paths
        assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        docs = await http.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).json() == {"status": "ready"}


async def test_schemathesis_finds_no_5xx_and_no_schema_violation(
    api_factory: ApiFactory, tmp_path: Path
) -> None:
    # Small batches: fuzzed batch bodies start real jobs on the emulator.
    async with api_factory(api={"max_batch_rows": 3}) as api:
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS),
            "run",
            f"{api.url}/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--header",
            f"Authorization: Bearer {api.acme.key}",
            "--request-timeout",
            "20",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
            env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
        )
        output, _ = await asyncio.wait_for(proc.communicate(), BUDGET_SECONDS * 2)
        elapsed = time.monotonic() - started
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    assert "passed" in text.lower(), text[-3000:]
    assert elapsed < BUDGET_SECONDS, f"schemathesis took {elapsed:.0f} s"
