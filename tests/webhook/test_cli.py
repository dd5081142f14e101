"""`python -m webhook` as a real process: refuses to start without a secret; logs JSON lines
that never contain the secret, the token or request headers."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import httpx
from temporalio.client import Client

from seedance_pipeline.core.callback_token import make_token
from seedance_pipeline.stack.ports import free_port
from tests.webhook.support import SECRET, CallbackRecorder, new_job_id, task_body

REPO = Path(__file__).resolve().parents[2]


def webhook_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBHOOK_", "TEMPORAL_"))}
    env.update(extra)
    return env


async def test_refuses_to_start_without_the_secret() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "seedance_pipeline.webhook",
        "--port",
        str(free_port()),
        cwd=REPO,
        env=webhook_env(SEEDANCE_CALLBACK_SECRET=""),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 2
    assert "refusing to start" in stderr.decode()
    assert "SEEDANCE_CALLBACK_SECRET" in stderr.decode()


async def test_serves_callbacks_and_logs_json_without_secrets(
    client: Client, temporal_target: str, tmp_path: Path
) -> None:
    port = free_port()
    log_path = tmp_path / "webhook.log"
    handle = await client.start_workflow(
        CallbackRecorder.run, id=new_job_id(), task_queue=f"nobody-{new_job_id()}"
    )
    token = make_token(handle.id, 2, SECRET)
    unknown_token = make_token(new_job_id(), 0, SECRET)
    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "seedance_pipeline.webhook",
            "--host",
            "127.0.0.1",
            cwd=REPO,
            env=webhook_env(
                SEEDANCE_CALLBACK_SECRET=SECRET.decode(),
                TEMPORAL_ADDRESS=temporal_target,
                WEBHOOK_PORT=str(port),  # the port comes from the environment here
            ),
            stdout=log_file,
            stderr=log_file,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            async with asyncio.timeout(30):
                while True:
                    try:
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert proc.returncode is None, log_path.read_text()
                    await asyncio.sleep(0.1)
            assert (await http.get("/readyz")).status_code == 200
            headers = {"authorization": "Bearer do-not-log-me"}
            resp = await http.post(f"/callbacks/{token}", json=task_body(), headers=headers)
            assert (resp.status_code, resp.json()) == (200, {"status": "accepted"})
            forged = token[:-2] + "zz"
            assert (await http.post(f"/callbacks/{forged}", json=task_body())).status_code == 403
            resp = await http.post(f"/callbacks/{unknown_token}", json=task_body())
            assert resp.status_code == 404
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=15)
        await handle.terminate("test done")

    text = log_path.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    results = [r["result"] for r in records if r.get("event") == "callback"]
    assert results == ["accepted", "forged", "unknown_job"]
    for secretish in (SECRET.decode(), token, token.split(".")[1], forged, "do-not-log-me"):
        assert secretish not in text
    assert unknown_token.split(".")[1] not in text
