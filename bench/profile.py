"""Optional sampling profiles of a child process with py-spy (not a project dependency).

When `py-spy` is installed beside the venv's python (`.venv/bin/pip install py-spy`), the
harness records the worker while it is being measured, non-blocking (the process is never
paused; sampling costs the 2-core machine a few percent of one core) and summarises the
collapsed stacks into the functions that hold the CPU. Without py-spy the figures are the same
and the report says no profile was taken.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profile:
    """`py-spy record --format raw` on one pid until `stop()`."""

    def __init__(self, pid: int, out: Path, rate: int = 50) -> None:
        self.out = out
        self._proc: subprocess.Popen[bytes] | None = None
        exe = py_spy()
        if exe is None:
            return
        self._proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                str(rate),
                "--nonblocking",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def active(self) -> bool:
        return self._proc is not None

    def stop(self) -> dict[str, Any] | None:
        """Stop sampling (SIGINT makes py-spy write its file) and summarise it."""
        if self._proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._proc.pid, signal.SIGINT)
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)
        self._proc = None
        return summarise(self.out) if self.out.exists() else None


def _frame_name(frame: str) -> str:
    """`func (path/to/module.py:123)` -> `module.py:func` (shorter, stable across lines)."""
    name, _, where = frame.partition(" (")
    file = where.split(":")[0].rsplit("/", 1)[-1]
    return f"{file}:{name}" if file else name


WATCH = {
    "sandbox: running workflow code": "_runner.py:_Instance._run_code",
    "sandbox: new workflow instance": "_runner.py:_Instance.__init__",
    "module imports": "<frozen importlib._bootstrap>:_find_and_load",
    "activities": "_activity.py:_ActivityWorker._execute_activity",
    "pydantic payload conversion": "pydantic.py:PydanticJSONPlainPayloadConverter.to_payload",
}
"""Inclusive shares always reported, whatever their rank (names as `_frame_name` writes them)."""


def summarise(path: Path, top: int = 12) -> dict[str, Any]:
    """Self time by leaf function and inclusive time by function, as % of samples, plus the
    inclusive share of the `WATCH` frames."""
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if f and not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        leaf[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count

    def pct(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(top)]

    watched = {
        label: round(100 * inclusive.get(frame, 0) / total, 1) if total else 0.0
        for label, frame in WATCH.items()
    }
    return {
        "samples": total,
        "self_pct": pct(leaf),
        "inclusive_pct": pct(inclusive),
        "watched_inclusive_pct": watched,
    }
