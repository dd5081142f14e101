"""Whatever a caller sends, the receiver answers 2xx/4xx (Temporal reachable): never a 5xx.

Bounded for CI: 150 examples, no deadline, no example database written into the repo.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest_asyncio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from temporalio.client import Client

from seedance_pipeline.core.callback_token import make_token
from seedance_pipeline.core.models import JOB_ID_PATTERN
from tests.webhook.support import OTHER_SECRET, SECRET, CallbackRecorder, new_job_id, task_body

RUNNING_JOB = new_job_id("fuzz-running")
FINISHED_JOB = new_job_id("fuzz-finished")
ALLOWED = {200, 400, 403, 404, 405, 413, 422}


@pytest_asyncio.fixture(scope="module")
async def fuzz_jobs(client: Client, task_queue: str) -> AsyncIterator[None]:
    running = await client.start_workflow(
        CallbackRecorder.run, id=RUNNING_JOB, task_queue=task_queue
    )
    finished = await client.start_workflow(
        CallbackRecorder.run, id=FINISHED_JOB, task_queue=task_queue
    )
    await finished.terminate("finished before the fuzzing")
    yield
    await running.terminate("fuzzing done")


def _flip(token: str, index: int) -> str:
    index %= len(token)
    replacement = "A" if token[index] != "A" else "B"
    return token[:index] + replacement + token[index + 1 :]


submit_nos = st.integers(min_value=0, max_value=10**6)
known_jobs = st.sampled_from([RUNNING_JOB, FINISHED_JOB])
any_job = st.one_of(known_jobs, st.from_regex(JOB_ID_PATTERN, fullmatch=True))
valid_tokens = st.builds(lambda job, n: make_token(job, n, SECRET), any_job, submit_nos)
forged_tokens = st.one_of(
    st.builds(lambda job, n: make_token(job, n, OTHER_SECRET), known_jobs, submit_nos),
    st.builds(_flip, valid_tokens, st.integers(min_value=0)),
    st.builds(lambda t, n: t[: n % len(t)], valid_tokens, st.integers(min_value=0)),
    st.from_regex(r"[A-Za-z0-9_-]{0,80}\.[A-Za-z0-9_-]{43}", fullmatch=True),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=450),
)
other_paths = st.text(st.characters(codec="utf-8"), max_size=60).map(
    lambda text: "/" + quote(text, safe="/")
)


def _callback_path(token: str) -> str:
    return "/callbacks/" + quote(token, safe="")


# Weighted towards tokens that pass the check (6 in 10), so most examples reach the body checks
# and Temporal; 3 in 10 forged; 1 in 10 anywhere else.
paths = st.integers(min_value=0, max_value=9).flatmap(
    lambda k: (
        valid_tokens.map(_callback_path)
        if k < 6
        else forged_tokens.map(_callback_path)
        if k < 9
        else other_paths
    )
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)
wrong_types = st.one_of(json_values, st.integers(-(2**70), 2**70))
task_fields = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=140), wrong_types),
        "status": st.one_of(
            st.sampled_from(["queued", "running", "succeeded", "failed", "expired", "RUNNING"]),
            wrong_types,
        ),
        "error": st.one_of(st.fixed_dictionaries({"code": st.text(), "message": wrong_types})),
        "failure_reason": wrong_types,
        "content": st.one_of(st.fixed_dictionaries({"video_url": wrong_types}), wrong_types),
        "usage": st.one_of(st.fixed_dictionaries({"total_tokens": wrong_types}), wrong_types),
        "created_at": wrong_types,
        "duration": wrong_types,
        "extra": json_values,
    },
)


def _encode(value: Any) -> bytes:
    return json.dumps(value).encode()


bodies = st.one_of(
    st.binary(max_size=2048),
    task_fields.map(_encode),
    st.builds(lambda status: _encode(task_body(status)), st.sampled_from(["running", "failed"])),
    json_values.map(_encode),
    st.integers(min_value=1, max_value=60_000).map(lambda n: b"[" * n + b"]" * n),
    st.builds(lambda n, b: bytes([b]) * n, st.integers(200_000, 400_000), st.integers(0, 255)),
    st.builds(lambda n: _encode(task_body(pad="x" * n)), st.integers(260_000, 270_000)),
)
methods = st.sampled_from(["POST"] * 12 + ["GET", "PUT", "PATCH", "DELETE"])
content_types = st.sampled_from(
    ["application/json", "text/plain", "application/octet-stream", "multipart/form-data"]
)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(method=methods, path=paths, body=bodies, content_type=content_types)
async def test_receiver_never_answers_5xx(
    fuzz_jobs: None,
    http: httpx.AsyncClient,
    method: str,
    path: str,
    body: bytes,
    content_type: str,
) -> None:
    resp = await http.request(method, path, content=body, headers={"content-type": content_type})
    event(f"{method if method != 'POST' else ''} {resp.status_code}".strip())
    assert resp.status_code in ALLOWED, (resp.status_code, resp.text[:200])
    assert resp.headers["content-type"].startswith("application/json")
