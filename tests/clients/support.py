"""Running the CLI the way a user does, in-process (fast, for many cases) or as a process
(the whole entry point, `os._exit` included)."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from seedance_pipeline.cli import run

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    def json(self) -> object:
        import json

        return json.loads(self.out)


def cli(*args: str) -> CliResult:
    """`starter.py ARGS` in this process (stdout and stderr captured; not terminals)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run(list(args))
    return CliResult(code, out.getvalue(), err.getvalue())


async def acli(*args: str) -> CliResult:
    """`cli` from async code: in a thread, so workers on this loop keep running. One at a
    time: the capture swaps the process's sys.stdout and sys.stderr."""
    return await asyncio.to_thread(cli, *args)


def plain_env(**extra: str) -> dict[str, str]:
    """A shell with no SEEDANCE_*, TEMPORAL_* or provider key: what a new user has."""
    drop = ("SEEDANCE_", "TEMPORAL_", "ARK_API_KEY", "VOLC_ARK_API_KEY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


async def starter(env: Mapping[str, str], *args: str, timeout: float = 120) -> CliResult:
    """`python starter.py ARGS` as a process, without blocking the event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "starter.py",
        *args,
        cwd=ROOT,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    return CliResult(proc.returncode or 0, out.decode(), err.decode())


def starter_sync(env: Mapping[str, str], *args: str, timeout: float = 120) -> CliResult:
    done = subprocess.run(
        [sys.executable, "starter.py", *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)
