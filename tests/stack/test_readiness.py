"""Readiness pieces of `make up`: which of a worker's queues Temporal does not list it on
yet, and the last words of a part that died."""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.client import Client

from seedance_pipeline.stack.readiness import (
    LOG_LINE_CHARS,
    LOG_LINES_SHOWN,
    QueueNeed,
    log_tail,
    missing_pollers,
)


def test_a_process_that_polls_nothing_is_missing_from_every_queue(client: Client) -> None:
    needs = [QueueNeed("ready-a", ("workflow", "activity")), QueueNeed("ready-b", ("activity",))]
    address = client.service_client.config.target_host
    assert missing_pollers(address, os.getpid(), needs) == [
        "ready-a (workflow)",
        "ready-a (activity)",
        "ready-b (activity)",
    ]
    assert missing_pollers("127.0.0.1:1", os.getpid(), needs)[0].startswith("Temporal at")


def test_log_tail_shows_what_the_part_said_since_its_start(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text("old run: fine\n")
    offset = log.stat().st_size
    with log.open("a") as f:
        f.writelines(f"line {i}\n" for i in range(20))
        f.write("x" * 1000 + "\n\n")
    tail = log_tail(log, offset)
    assert len(tail) == LOG_LINES_SHOWN and "old run: fine" not in tail
    assert tail[-1].endswith(" ...") and len(tail[-1]) == LOG_LINE_CHARS + 4
    assert log_tail(tmp_path / "missing.log") == []
