"""The embedded stack as a user runs it: `make up` on moved ports, commands from a plain shell.

Two stacks run at once on free ports with their own data directories (this is the only
module that starts whole stacks: it is heavy). Every command runs as a process with no
provider key, no TEMPORAL_ADDRESS and no SEEDANCE_* but the data directory, as a new user's
shell has. Everything started here is stopped in the fixture's `finally`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from seedance_pipeline.adapters.stack_record import read_record
from seedance_pipeline.stack.ports import free_port
from tests.clients.support import ROOT, CliResult, plain_env, starter_sync

pytestmark = pytest.mark.timeout(600)


@dataclass
class Stack:
    data: Path
    ports: dict[str, int]

    def stack_env(self, **extra: str) -> dict[str, str]:
        """What `make up` runs with: the moved ports and a fast emulator."""
        env = plain_env(
            SEEDANCE_DATA_DIR=str(self.data),
            EMULATOR_QUEUE_SECONDS="0.2",
            EMULATOR_RUN_SECONDS="0.5",
            **{name: str(port) for name, port in self.ports.items()},
        )
        env.update(extra)
        return env

    def shell(self, **extra: str) -> dict[str, str]:
        """A plain shell that knows only where `make up` keeps its state."""
        return plain_env(SEEDANCE_DATA_DIR=str(self.data), **extra)

    def stack(self, command: str, **extra: str) -> CliResult:
        done = subprocess.run(
            [sys.executable, "-m", "seedance_pipeline.stack", command],
            cwd=ROOT,
            env=self.stack_env(**extra),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    def make_up(self, **extra: str) -> CliResult:
        done = subprocess.run(
            ["make", "-s", "up"],
            cwd=ROOT,
            env=self.stack_env(**extra),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    @property
    def temporal_port(self) -> int:
        return self.ports["TEMPORAL_PORT"]

    def stuck(self, word: str) -> None:
        """Jobs whose prompt holds `word` stay queued at the emulator."""
        faults = f"http://127.0.0.1:{self.ports['EMULATOR_PORT']}/_emulator/faults"
        rule = {"kind": "stuck", "phase": "queued", "match": {"prompt_contains": word}}
        httpx.put(faults, json=[rule], timeout=5).raise_for_status()

    def pid(self, part: str) -> int:
        return int((self.data / "pids" / f"{part}.pid").read_text())


def new_stack(root: Path, name: str) -> Stack:
    names = ("TEMPORAL_PORT", "TEMPORAL_UI_PORT", "EMULATOR_PORT", "WEBHOOK_PORT")
    ports = {n: free_port() for n in (*names, "WORKER_METRICS_PORT")}
    return Stack(root / name, ports)


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Stack]]:
    root = tmp_path_factory.mktemp("stacks")
    a, b = new_stack(root, "a"), new_stack(root, "b")
    try:
        # Both at once (ports and data directories of their own): an `up` mostly waits for
        # its parts to answer, so the two cost the wall time of one.
        with ThreadPoolExecutor(max_workers=2) as pool:
            for started in pool.map(lambda s: s.stack("up"), (a, b)):
                assert started.code == 0, started.out + started.err
        yield a, b
    finally:
        for s in (a, b):
            s.stack("down")


def job_id(result: CliResult) -> str:
    assert result.code == 0, result.err
    return str(json.loads(result.out)["job_id"])


def listed(env: dict[str, str]) -> set[str]:
    shown = starter_sync(env, "list", "--json")
    assert shown.code == 0, shown.err
    return {row["job_id"] for row in json.loads(shown.out)}


def test_up_records_where_every_part_listens(stacks: tuple[Stack, Stack]) -> None:
    a, _ = stacks
    record = read_record(a.data)
    assert record is not None
    assert record.temporal == f"127.0.0.1:{a.temporal_port}"
    assert list(record.parts) == ["temporal", "emulator", "webhook", "worker", "api"]
    assert record.namespace_id and record.alive("worker")
    assert set(record.worker_queues) == {
        "seedance-jobs",
        "seedance-submit",
        "seedance-jobs-entities",
    }


def test_only_temporal_port_reaches_the_right_stack(
    stacks: tuple[Stack, Stack], tmp_path: Path
) -> None:
    """Stack A and stack B run at once; with only TEMPORAL_PORT exported (and no record to
    read), `generate`, `list` and `cancel` go to B and never to A."""
    a, b = stacks
    only_port = plain_env(TEMPORAL_PORT=str(b.temporal_port), SEEDANCE_DATA_DIR=str(tmp_path))
    word = uuid.uuid4().hex[:8]
    b.stuck(word)  # the job waits at the provider until it is cancelled
    started = starter_sync(only_port, "generate", f"port test {word}", "--duration", "4", "--json")
    job = job_id(started)
    assert f"note: Temporal at 127.0.0.1:{b.temporal_port} (from TEMPORAL_PORT)" in started.err
    assert job in listed(only_port)
    assert job not in listed(a.shell())
    cancelled = starter_sync(only_port, "cancel", job)
    assert cancelled.code == 0 and f"cancellation requested for {job}" in cancelled.out
    on_a = starter_sync(plain_env(TEMPORAL_PORT=str(a.temporal_port)), "cancel", job)
    assert on_a.code == 4 and f"no job with ID {job!r}" in on_a.err
    for _ in range(100):
        again = starter_sync(only_port, "cancel", job)
        if again.code != 0:
            break
        time.sleep(0.2)
    assert again.code == 2 and "already finished (cancelled" in again.err, again.err


def test_the_record_alone_reaches_its_stack_and_a_mismatch_is_said(
    stacks: tuple[Stack, Stack],
) -> None:
    a, b = stacks
    job = job_id(starter_sync(a.shell(), "generate", f"record {uuid.uuid4().hex[:6]}", "--json"))
    assert job in listed(a.shell()) and job not in listed(b.shell())
    crossed = starter_sync(b.shell(TEMPORAL_PORT=str(a.temporal_port)), "list", "--json")
    assert crossed.code == 0
    assert (
        f"the stack `make up` started listens on 127.0.0.1:{b.temporal_port}; this command "
        f"talks to 127.0.0.1:{a.temporal_port} (from TEMPORAL_PORT)"
    ) in crossed.err


def test_a_healthy_stack_passes_doctor_and_reconcile_without_a_key(
    stacks: tuple[Stack, Stack],
) -> None:
    a, _ = stacks
    shell = a.shell()
    assert "ARK_API_KEY" not in shell and "TEMPORAL_ADDRESS" not in shell
    ran = starter_sync(shell, "generate", "reconciled fox", "--duration", "4", "--wait", "--json")
    assert ran.code == 0, ran.err
    doctor = starter_sync(shell, "doctor")
    assert doctor.code == 0, doctor.out + doctor.err
    for line in (
        "ok   route byteplus: key in $ARK_API_KEY accepted",
        "ok   callbacks: on: the receiver at",
        "ok   storage: writable",
        "ok   ledger: reachable",
        "ok   queues: polls seedance-jobs (workflow+activity), seedance-submit (activity)",
        "doctor: every check passed",
    ):
        assert line in doctor.out, (line, doctor.out)
    reconcile = starter_sync(shell, "reconcile", "--json")
    assert reconcile.code == 0, reconcile.out + reconcile.err
    report = json.loads(reconcile.out)
    assert report["ok"] and report["routes_checked"] == ["byteplus", "volcengine"]
    assert sum(r["matched"] for r in report["routes"]) >= 1
    costs = starter_sync(shell, "costs", "--json")  # the stack's ledger, from its record
    assert costs.code == 0, costs.err
    assert sum(line["jobs"] for line in json.loads(costs.out)["totals"]) >= 1


def test_demo_leaves_a_stack_it_did_not_start_running(stacks: tuple[Stack, Stack]) -> None:
    a, _ = stacks
    before = {part: a.pid(part) for part in ("temporal", "worker")}
    demo = a.stack("demo")
    assert demo.code == 0, demo.out + demo.err
    assert "demo succeeded" in demo.out
    assert f"the videos are in {a.data / 'outputs'}" in demo.out
    assert "the stack you started is still running" in demo.out
    assert demo.out.rstrip().splitlines()[-1] == (
        f"the demo's videos (with last frames and manifests) are under {a.data / 'outputs'}"
    )
    for part, pid in before.items():
        assert a.pid(part) == pid
        os.kill(pid, 0)  # still alive
    assert starter_sync(a.shell(), "doctor").code == 0
    # From a plain shell (no key), judged with no grace: the demo's bill, rows and videos agree.
    reconcile = starter_sync(a.shell(), "reconcile", "--grace-minutes", "0")
    assert reconcile.code == 0, reconcile.out + reconcile.err
    assert "no mismatch found" in reconcile.out


def test_a_dead_worker_is_one_line_with_its_log_and_a_broken_setting_stops_make_up(
    stacks: tuple[Stack, Stack],
) -> None:
    _, b = stacks
    job = job_id(starter_sync(b.shell(), "generate", "before the crash", "--json"))
    os.kill(b.pid("worker"), signal.SIGKILL)
    began = time.monotonic()
    status = starter_sync(b.shell(), "status", job)
    assert status.code == 5, status.err
    errors = [line for line in status.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(b.data / "logs" / "worker.log") in errors[0]
    assert "Traceback" not in status.err and time.monotonic() - began < 30

    broken = b.make_up(SEEDANCE_STORAGE__URI="ftp://x")
    assert broken.code != 0
    assert "worker exited during start" in broken.err
    assert "worker: invalid configuration" in broken.err
    assert "storage.uri (from SEEDANCE_STORAGE__URI): scheme 'ftp' is not supported" in broken.err
    assert str(b.data / "logs" / "worker.log") in broken.err
    assert "stack ready" not in broken.out

    fixed = b.make_up()
    assert fixed.code == 0, fixed.err
    assert starter_sync(b.shell(), "status", job).code in (0, 1)
