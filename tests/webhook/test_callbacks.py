"""The receiver against a real Temporal dev server: every answer, and what reached the workflow."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.core.callback_token import make_token
from seedance_pipeline.core.models import ProviderTask
from seedance_pipeline.webhook.app import DEFAULT_MAX_BODY_BYTES
from tests.webhook.support import (
    OTHER_SECRET,
    SECRET,
    CallbackRecorder,
    callbacks_in_history,
    new_job_id,
    signal_events,
    task_body,
    wait_for_received,
)


async def start_job(client: Client, task_queue: str) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(CallbackRecorder.run, id=new_job_id(), task_queue=task_queue)


IDLE_QUEUE = f"nobody-polls-{new_job_id()}"
"""Jobs that only need to exist (their history is what is checked) live where no worker polls."""


def path_for(job_id: str, submit_no: int = 0, secret: bytes = SECRET) -> str:
    return f"/callbacks/{make_token(job_id, submit_no, secret)}"


async def test_valid_callback_reaches_the_workflow(
    client: Client, task_queue: str, http: httpx.AsyncClient
) -> None:
    handle = await start_job(client, task_queue)
    body = task_body(
        "succeeded",
        content={"video_url": "https://example.invalid/v.mp4"},
        usage={"completion_tokens": 108900, "total_tokens": 108900},
        framespersecond=24,  # unknown to the model: ignored, not refused
    )
    before = datetime.now(UTC)
    resp = await http.post(path_for(handle.id, submit_no=3), json=body)
    assert resp.status_code == 200
    assert resp.json() == {"status": "accepted"}

    (callback,) = await wait_for_received(handle, 1)
    assert callback.submit_no == 3
    assert callback.task == ProviderTask.model_validate(body)
    assert callback.task.content is not None
    assert callback.task.content.video_url == "https://example.invalid/v.mp4"
    assert before - timedelta(seconds=1) <= callback.received_at <= datetime.now(UTC)
    assert callback.received_at.utcoffset() == timedelta(0)
    await handle.signal(CallbackRecorder.finish)
    assert await handle.result() == 1


async def test_callback_is_stored_while_no_worker_runs(
    client: Client, http: httpx.AsyncClient
) -> None:
    """Signals are persisted by the server: a worker deploy does not lose callbacks."""
    handle = await start_job(client, IDLE_QUEUE)
    try:
        resp = await http.post(path_for(handle.id, submit_no=1), json=task_body("queued"))
        assert resp.status_code == 200
        assert resp.json() == {"status": "accepted"}
        events = await signal_events(handle)
        assert [e.signal_name for e in events] == ["provider_callback"]
        (callback,) = await callbacks_in_history(client, handle)
        assert callback.submit_no == 1
        assert callback.task.status == "queued"
    finally:
        await handle.terminate("test done")


FORGERIES = {
    "wrong mac": lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),
    "other secret": None,  # built with OTHER_SECRET below
    "truncated": lambda token: token[:-3],
    "no mac": lambda token: token.split(".")[0],
    "extra dot": lambda token: token + ".x",
    "garbage": lambda token: "not-a-token",
    "non-ascii mac": lambda token: token[:-1] + "é",
    "non-ascii payload": lambda token: "é" + token,
    "overlong": lambda token: "A" * 500 + token,
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
async def test_forged_token_is_refused_and_signals_nothing(
    forgery: str, client: Client, http: httpx.AsyncClient
) -> None:
    handle = await start_job(client, IDLE_QUEUE)
    mutate = FORGERIES[forgery]
    if mutate is None:
        token = make_token(handle.id, 0, OTHER_SECRET)
    else:
        token = mutate(make_token(handle.id, 0, SECRET))
    resp = await http.post(f"/callbacks/{token}", json=task_body())
    assert resp.status_code == 403
    assert resp.json() == {"error": "invalid callback token"}
    assert await signal_events(handle) == []
    await handle.terminate("test done")


async def test_token_for_a_job_that_never_existed_is_404(
    client: Client, http: httpx.AsyncClient
) -> None:
    job_id = new_job_id("never")
    resp = await http.post(path_for(job_id), json=task_body())
    assert resp.status_code == 404
    assert resp.json() == {"error": "unknown job"}
    with pytest.raises(RPCError) as raised:
        await client.get_workflow_handle(job_id).describe()
    assert raised.value.status == RPCStatusCode.NOT_FOUND  # the receiver created nothing


MALFORMED: dict[str, tuple[bytes, int, str]] = {
    "broken json": (b'{"id": "cgt-1", "status": ', 400, "not valid JSON"),
    "empty body": (b"", 400, "not valid JSON"),
    "invalid utf-8": (b'{"id": "\xff\xfe", "status": "running"}', 400, "not valid JSON"),
    "NaN": (b'{"id": "cgt-1", "status": "running", "seed": NaN}', 400, "not valid JSON"),
    "deep nesting": (b"[" * 50_000 + b"]" * 50_000, 400, "not valid JSON"),
    "array": (b"[1, 2, 3]", 400, "JSON object"),
    "string": (b'"running"', 400, "JSON object"),
    "null": (b"null", 400, "JSON object"),
    "missing id": (b'{"status": "running"}', 422, "id"),
    "missing status": (b'{"id": "cgt-1"}', 422, "status"),
    "unknown status": (b'{"id": "cgt-1", "status": "exploded"}', 422, "status"),
    "empty id": (b'{"id": "", "status": "running"}', 422, "id"),
    "id not a string": (b'{"id": 123, "status": "running"}', 422, "id"),
    "usage not an object": (b'{"id": "c", "status": "running", "usage": "lots"}', 422, "usage"),
    "error not an object": (b'{"id": "c", "status": "failed", "error": [1]}', 422, "error"),
    "created_at text": (b'{"id": "c", "status": "running", "created_at": "x"}', 422, "created"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_body_is_refused_and_signals_nothing(
    case: str, client: Client, http: httpx.AsyncClient
) -> None:
    body, status, words = MALFORMED[case]
    handle = await start_job(client, IDLE_QUEUE)
    resp = await http.post(
        path_for(handle.id), content=body, headers={"content-type": "application/json"}
    )
    assert resp.status_code == status
    assert words in resp.json()["error"]
    assert await signal_events(handle) == []
    await handle.terminate("test done")


def padded_body(total_bytes: int) -> bytes:
    """A valid task object padded (with an ignored field) to exactly `total_bytes`."""
    empty = json.dumps(task_body(pad="")).encode()
    padded = json.dumps(task_body(pad="x" * (total_bytes - len(empty)))).encode()
    assert len(padded) == total_bytes
    return padded


async def test_body_at_the_limit_is_accepted(client: Client, http: httpx.AsyncClient) -> None:
    handle = await start_job(client, IDLE_QUEUE)
    body = padded_body(DEFAULT_MAX_BODY_BYTES)
    resp = await http.post(path_for(handle.id), content=body)
    assert resp.status_code == 200
    assert len(await signal_events(handle)) == 1
    await handle.terminate("test done")


async def test_oversized_body_is_413(client: Client, http: httpx.AsyncClient) -> None:
    handle = await start_job(client, IDLE_QUEUE)
    resp = await http.post(path_for(handle.id), content=padded_body(DEFAULT_MAX_BODY_BYTES + 1))
    assert resp.status_code == 413
    assert "exceeds" in resp.json()["error"]
    assert await signal_events(handle) == []
    await handle.terminate("test done")


async def test_oversized_chunked_body_without_length_is_413(
    client: Client, http: httpx.AsyncClient
) -> None:
    """No Content-Length to trust: the stream itself is counted."""
    handle = await start_job(client, IDLE_QUEUE)
    body = padded_body(DEFAULT_MAX_BODY_BYTES + 4096)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 16 * 1024):
            yield body[start : start + 16 * 1024]

    resp = await http.post(path_for(handle.id), content=chunks())
    assert "content-length" not in resp.request.headers
    assert resp.status_code == 413
    assert await signal_events(handle) == []
    await handle.terminate("test done")


@pytest.mark.parametrize("ending", ["completed", "terminated", "cancelled"])
async def test_callback_for_a_finished_job_is_acknowledged_and_ignored(
    ending: str, client: Client, task_queue: str, http: httpx.AsyncClient
) -> None:
    handle = await start_job(client, task_queue)
    if ending == "completed":
        await handle.signal(CallbackRecorder.finish)
        await handle.result()
    elif ending == "terminated":
        await handle.terminate("test")
    else:
        await handle.cancel()
        with pytest.raises(Exception):  # noqa: B017 - WorkflowFailureError wrapping the cancel
            await handle.result()
    resp = await http.post(path_for(handle.id), json=task_body("succeeded"))
    assert resp.status_code == 200
    assert resp.json() == {"status": "ignored", "reason": "job finished"}
    assert await callbacks_in_history(client, handle) == []


async def test_only_post_on_the_callback_path(http: httpx.AsyncClient) -> None:
    path = path_for(new_job_id())
    for method in ("GET", "PUT", "DELETE"):
        resp = await http.request(method, path)
        assert resp.status_code == 405
        assert "POST" in resp.headers["allow"]


async def test_unknown_paths_are_json_404(http: httpx.AsyncClient) -> None:
    # "/healthz/" and "/metrics/": no 307 to the path without the slash (the fuzz test found it)
    paths = ("/", "/callbacks", "/callbacks/", "/callbacks/a/b", "/healthz/", "/metrics/")
    for path in paths:
        resp = await http.post(path, json=task_body())
        assert resp.status_code == 404, path
        assert resp.json() == {"error": "Not Found"}


async def test_health_readiness_and_metrics(client: Client, http: httpx.AsyncClient) -> None:
    resp = await http.get("/healthz")
    assert (resp.status_code, resp.json()) == (200, {"status": "ok"})
    resp = await http.get("/readyz")
    assert (resp.status_code, resp.json()) == (200, {"status": "ready"})

    handle = await start_job(client, IDLE_QUEUE)
    assert (await http.post(path_for(handle.id), json=task_body())).status_code == 200
    assert (await http.post("/callbacks/x.y", json=task_body())).status_code == 403
    await handle.terminate("test done")

    text = (await http.get("/metrics")).text
    counts = {
        line.split("{", 1)[1].split("}", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("seedance_webhook_callbacks_total{")
    }
    assert counts['result="accepted"'] >= 1
    assert counts['result="forged"'] >= 1
    assert 'result="unavailable"' in counts
    assert "seedance_webhook_callback_seconds_bucket" in text
