"""Child processes and their memory, without extra dependencies.

Every part of the stack runs as its own process (as `make up` runs them) so the worker's
resident memory is its own and no server competes with the harness for one GIL. psutil is not a
project dependency, so memory comes from `/proc/<pid>/status` (VmRSS, VmHWM) and the peak is
reset through `/proc/<pid>/clear_refs`, which Linux has supported since 4.0.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

MB = 1_000_000
"""Decimal megabytes, as the targets are written (400 MB, 64 MB); the report says MB."""


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


_STARTED: list[Proc] = []
"""Every child started in this process, so an interrupted run can still stop them all."""


def stop_all() -> None:
    """Stop every child still running (newest first); used when a run is interrupted."""
    for proc in reversed(_STARTED):
        proc.stop()
    _STARTED.clear()


@dataclass(eq=False)
class Proc:
    """One child process in its own session (so a stop takes its children with it)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    cwd: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} is not running"
        return self.popen.pid

    def start(self) -> Proc:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _STARTED.append(self)
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, check: Callable[[], bool], timeout: float = 60.0) -> None:
        """Block until `check()` holds; fail fast (with the log's tail) if the child died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited during start:\n{self.tail()}")
            if check():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready within {timeout:.0f}s:\n{self.tail()}")

    def log_contains(self, text: str) -> bool:
        try:
            return text in self.log.read_text(errors="replace")
        except OSError:
            return False

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL what is left after `timeout`."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self.popen = None


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(f"{key} not in /proc/{pid}/status")


def rss_bytes(pid: int) -> int:
    """Resident set size now (VmRSS)."""
    return _status_kb(pid, "VmRSS") * 1024


def peak_rss_bytes(pid: int) -> int:
    """Highest resident set size since start or the last `reset_peak_rss` (VmHWM)."""
    return _status_kb(pid, "VmHWM") * 1024


def reset_peak_rss(pid: int) -> None:
    """Make VmHWM start again from the current RSS (write 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
