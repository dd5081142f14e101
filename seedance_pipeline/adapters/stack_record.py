"""Where the embedded stack listens: `<data dir>/stack.json`, written by `make up` once every
part answers and removed by `make down`.

Every CLI command reads it, so `starter.py list` reaches the stack `make up` started on
whatever ports it was given, not whatever answers on 7233. It also carries what a command
needs to tell the truth about that stack: the Temporal namespace's ID (to notice another
server answering on the recorded port), the pids (to notice the stack is gone) and the log
of each part (to point at the worker's log when no worker polls).

Pure data and file I/O only (here, not in `stack/`, which needs the Temporal binaries): the
CLI imports it on every start, the stack writes it.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ROOT = Path(__file__).resolve().parents[2]
"""The checkout: `.data/` and `examples/` live there (`make up` runs from it)."""
DATA_DIR_ENV = "SEEDANCE_DATA_DIR"
RECORD_NAME = "stack.json"


class StackRecord(BaseModel):
    """What `make up` started and where it listens."""

    model_config = ConfigDict(extra="ignore")

    temporal: str
    """host:port of the Temporal frontend."""
    namespace: str = "default"
    namespace_id: str = ""
    """The namespace's ID on that server: another server on the same port has another one."""
    ui: str = ""
    parts: dict[str, str] = Field(default_factory=dict)
    """part name -> where it listens, in start order (`temporal`, `emulator`, ..., `worker`)."""
    pids: dict[str, int] = Field(default_factory=dict)
    logs: dict[str, str] = Field(default_factory=dict)
    """part name -> its log file."""
    job_queue: str = ""
    worker_queues: list[str] = Field(default_factory=list)
    """The queues the worker was seen polling when `make up` declared the stack ready."""
    data_dir: str = ""
    storage: str = ""
    """Where the worker stores videos (a directory or URI; no credentials)."""
    ledger: str = ""
    """The worker's ledger URL, when it carries no password (else empty): `costs` reads it."""
    emulated: bool = True
    started_at: datetime | None = None

    def alive(self, part: str = "temporal") -> bool:
        """Whether that part's process still runs (on this machine)."""
        pid = self.pids.get(part)
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # it exists, it is just not ours
        return True

    def log_of(self, part: str) -> str | None:
        return self.logs.get(part)


def data_dir() -> Path:
    """`SEEDANCE_DATA_DIR`, else `.data/` in the checkout (where `make up` keeps its state)."""
    return Path(os.environ.get(DATA_DIR_ENV) or ROOT / ".data")


def record_path(data: Path | None = None) -> Path:
    return (data or data_dir()) / RECORD_NAME


def write_record(record: StackRecord, data: Path | None = None) -> Path:
    """Atomically (temp file + rename): a CLI starting meanwhile reads the old or the new one."""
    path = record_path(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_record(data: Path | None = None) -> StackRecord | None:
    """The record, or None when there is none (or it cannot be read: then it says nothing)."""
    path = record_path(data)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return StackRecord.model_validate(raw)
    except (OSError, ValueError, ValidationError):
        return None


def remove_record(data: Path | None = None) -> None:
    with contextlib.suppress(FileNotFoundError):
        record_path(data).unlink()
