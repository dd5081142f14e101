"""Loopback ports to hand to a child process that binds them a moment later.

Asking the kernel for port 0 returns a port from the ephemeral range, the same range every
outgoing connection on the machine draws from; between our pick and the child's bind, a
connection (or another process asking for port 0) can take it, and the child dies with
"Address already in use". That happened to CI with two test processes starting stacks side
by side. So ports are picked below the ephemeral range, where nothing takes a port unasked,
each test process in its own slice of it (xdist names the process), and never the same port
twice in one process.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import socket
import threading

_LOW, _HIGH = 20_000, 32_000
"""Below Linux's default ephemeral range (32768-60999) and above the well-known services."""
_SLICES = 8
"""Test processes that can pick side by side without meeting (pytest-xdist's gw0..gw7)."""

_lock = threading.Lock()
_given: set[int] = set()


def _slice() -> range:
    """This process's share of the range: by xdist worker number, else by process ID."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    found = re.fullmatch(r"gw(\d+)", worker)
    index = int(found.group(1)) if found else os.getpid()
    width = (_HIGH - _LOW) // _SLICES
    start = _LOW + (index % _SLICES) * width
    return range(start, start + width)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nobody holds now and this process has not handed out before."""
    span = _slice()
    offset = random.randrange(len(span))
    with _lock:
        for port in itertools.chain(span[offset:], span[:offset]):
            if port not in _given and _bindable(port):
                _given.add(port)
                return port
    raise RuntimeError(f"no free loopback port in {span.start}-{span.stop - 1}; stop old stacks")
