"""Temporal down, coming up, going away, misconfigured: the receiver's 503 and its readiness.

These tests bring up their own short-lived dev server (a fraction of a second) so they can stop
it without disturbing the session's.
"""

from __future__ import annotations

import functools
import time

import httpx
from temporalio.testing import WorkflowEnvironment

from seedance_pipeline.clients.temporal_client import connect, with_pydantic
from seedance_pipeline.core.callback_token import make_token
from seedance_pipeline.stack.binaries import temporal_cli
from seedance_pipeline.stack.ports import free_port
from seedance_pipeline.webhook.app import create_app
from tests.webhook.support import SECRET, CallbackRecorder, new_job_id, serve, task_body


def metric(text: str, result: str) -> float:
    prefix = f'seedance_webhook_callbacks_total{{result="{result}"}} '
    (line,) = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(line.removeprefix(prefix))


async def test_receiver_starts_before_temporal_connects_later_and_notices_it_gone() -> None:
    port = free_port()
    app = create_app(
        client_factory=functools.partial(connect, target_host=f"127.0.0.1:{port}"),
        secret=SECRET,
        answer_budget_seconds=1.0,
        connect_timeout_seconds=1.0,
    )
    job_id = new_job_id()
    path = f"/callbacks/{make_token(job_id, 0, SECRET)}"
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            # 1. Nothing listens yet: alive, not ready, callbacks get 503 (the provider retries).
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/readyz")).status_code == 503
            resp = await http.post(path, json=task_body())
            assert resp.status_code == 503
            assert resp.headers["retry-after"] == "5"
            assert "unavailable" in resp.json()["error"]
            # Checks that need no Temporal still answer 4xx, not 503.
            assert (await http.post("/callbacks/x.y", json=task_body())).status_code == 403
            assert (await http.post(path, content=b"{")).status_code == 400

            # 2. Temporal comes up on that port: the next request connects.
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=temporal_cli(), port=port, dev_server_log_level="error"
            )
            try:
                handle = await with_pydantic(env.client).start_workflow(
                    CallbackRecorder.run, id=job_id, task_queue=f"nobody-{job_id}"
                )
                assert (await http.get("/readyz")).status_code == 200
                resp = await http.post(path, json=task_body())
                assert (resp.status_code, resp.json()) == (200, {"status": "accepted"})
                await handle.terminate("test done")
            finally:
                await env.shutdown()

            # 3. It goes away: the cached client fails, inside the answer budget, with a 503.
            started = time.monotonic()
            resp = await http.post(path, json=task_body())
            assert resp.status_code == 503
            assert time.monotonic() - started < 3.0
            assert (await http.get("/readyz")).status_code == 503

            text = (await http.get("/metrics")).text
            assert metric(text, "unavailable") == 2
            assert metric(text, "accepted") == 1
            assert metric(text, "forged") == 1
            assert metric(text, "malformed") == 1


async def test_missing_namespace_is_503_not_unknown_job(temporal_target: str) -> None:
    """NOT_FOUND for the namespace is our misconfiguration, not a job the caller got wrong."""
    app = create_app(
        client_factory=functools.partial(
            connect, target_host=temporal_target, namespace="no-such-namespace"
        ),
        secret=SECRET,
    )
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            path = f"/callbacks/{make_token(new_job_id(), 0, SECRET)}"
            resp = await http.post(path, json=task_body())
            assert resp.status_code == 503
