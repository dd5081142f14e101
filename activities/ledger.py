"""Cost ledger: one row per job attempt the provider may bill, upserted by (job_id, submit_no).

SQLite by default (one file, no server). The upsert makes a retried activity harmless: it
writes the same row again. Reports (`starter.py costs`) read the same table.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

from temporalio import activity

from core.models import LedgerEntry

COLUMNS = (
    "job_id",
    "submit_no",
    "route",
    "model_alias",
    "model_id",
    "service_tier",
    "resolution",
    "ratio",
    "duration",
    "provider_task_id",
    "tokens",
    "estimated_tokens",
    "billed",
    "unit_price",
    "currency",
    "cost",
    "outcome",
    "error_code",
    "error_message",
    "requested_at",
    "finished_at",
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    job_id TEXT NOT NULL,
    submit_no INTEGER NOT NULL,
    route TEXT NOT NULL,
    model_alias TEXT NOT NULL,
    model_id TEXT NOT NULL,
    service_tier TEXT NOT NULL,
    resolution TEXT,
    ratio TEXT,
    duration INTEGER,
    provider_task_id TEXT,
    tokens INTEGER NOT NULL,
    estimated_tokens INTEGER,
    billed INTEGER NOT NULL,
    unit_price REAL NOT NULL,
    currency TEXT NOT NULL,
    cost REAL NOT NULL,
    outcome TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    requested_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (job_id, submit_no)
)
"""


class SqliteLedger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(SCHEMA)
        self._conn.commit()
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> SqliteLedger:
        prefix = "sqlite:///"
        if not url.startswith(prefix):
            raise ValueError(f"ledger URL {url!r} not supported (expected sqlite:///path)")
        return cls(Path(url[len(prefix) :]))

    def upsert(self, entry: LedgerEntry) -> None:
        row = entry.model_dump(mode="json")
        values = [row[c] for c in COLUMNS]
        updates = ", ".join(f"{c}=excluded.{c}" for c in COLUMNS[2:])
        # Column names are the constants above, never user input; values are bound parameters.
        sql = (
            f"INSERT INTO ledger ({', '.join(COLUMNS)}) VALUES "  # noqa: S608
            f"({', '.join('?' for _ in COLUMNS)}) "
            f"ON CONFLICT(job_id, submit_no) DO UPDATE SET {updates}"
        )
        with self._lock:
            self._conn.execute(sql, values)
            self._conn.commit()

    def rows(self, where: str = "", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._conn.execute(
                f"SELECT {', '.join(COLUMNS)} FROM ledger {where}",  # noqa: S608
                params,
            )
            return [dict(zip(COLUMNS, r, strict=True)) for r in cursor.fetchall()]

    def close(self) -> None:
        self._conn.close()


class LedgerActivities:
    def __init__(self, ledger: SqliteLedger) -> None:
        self._ledger = ledger

    @activity.defn
    async def record_cost(self, entry: LedgerEntry) -> None:
        await asyncio.to_thread(self._ledger.upsert, entry)
