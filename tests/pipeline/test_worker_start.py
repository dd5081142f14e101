"""`worker.py` as a real process, started before Temporal is up: it waits for the server (as a
worker beside a starting or restarting cluster must), and gives up with one line naming the
address and the fix when the server never comes."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from seedance_pipeline.core.search_attributes import ALL_KEYS
from seedance_pipeline.emulator.testing import EmulatorHandle
from seedance_pipeline.stack.binaries import temporal_cli
from seedance_pipeline.stack.ports import free_port
from tests.pipeline.conftest import API_KEY, CALLBACK_SECRET, pipeline_overrides, settings_env

ROOT = Path(__file__).resolve().parents[2]


def _worker_env(emulator: EmulatorHandle, tmp: Path, port: int, wait: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEEDANCE_", "TEMPORAL_"))}
    env.update(settings_env(pipeline_overrides(emulator, "", tmp, callbacks=False)))
    env.update(
        {
            "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
            "SEEDANCE_TEMPORAL__CONNECT_WAIT_SECONDS": str(wait),
            "WORKER_METRICS_PORT": str(free_port()),
            "ARK_API_KEY": API_KEY,
            "SEEDANCE_CALLBACK_SECRET": CALLBACK_SECRET,
        }
    )
    return env


async def _spawn(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    handle = log.open("ab")
    return await asyncio.create_subprocess_exec(
        sys.executable, "worker.py", cwd=ROOT, env=env, stdout=handle, stderr=handle
    )


async def _until_logged(log: Path, text: str, within: float) -> None:
    give_up = time.monotonic() + within
    while text not in log.read_text(encoding="utf-8", errors="replace"):
        assert time.monotonic() < give_up, f"{text!r} not logged: {log.read_text()[-2000:]}"
        await asyncio.sleep(0.2)


async def test_a_worker_gives_up_on_an_absent_temporal_naming_it(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "worker.log"
    started = time.monotonic()
    proc = await _spawn(_worker_env(emulator, tmp_path, port, wait=1.5), log)
    assert await asyncio.wait_for(proc.wait(), timeout=60) == 3
    said = log.read_text(encoding="utf-8")
    assert time.monotonic() - started >= 1.5
    assert "worker.waiting_for_temporal" in said
    assert f"worker: cannot reach Temporal at 127.0.0.1:{port}" in said and "make up" in said


async def test_a_worker_started_before_temporal_waits_and_then_works(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "worker.log"
    proc = await _spawn(_worker_env(emulator, tmp_path, port, wait=60), log)
    try:
        await _until_logged(log, "worker.waiting_for_temporal", within=30)
        env = await WorkflowEnvironment.start_local(
            port=port,
            dev_server_existing_path=temporal_cli(),
            search_attributes=ALL_KEYS,
            dev_server_log_level="error",
            ui=False,
        )
        try:
            await _until_logged(log, "worker.started", within=60)
            assert proc.returncode is None
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), timeout=30)
            await env.shutdown()
    finally:
        if proc.returncode is None:
            proc.kill()
