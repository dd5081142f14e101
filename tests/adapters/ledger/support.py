"""Ledger rows for tests: a valid entry with the fields a test cares about overridden."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from seedance_pipeline.core.models import LedgerEntry

T0 = datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=UTC)


def entry(job_id: str = "job-1", submit_no: int = 1, **fields: Any) -> LedgerEntry:
    finished = fields.pop("finished_at", T0)
    base: dict[str, Any] = {
        "job_id": job_id,
        "submit_no": submit_no,
        "route": "byteplus",
        "model_alias": "mini",
        "model_id": "dreamina-seedance-2-0-mini-260615",
        "service_tier": "default",
        "resolution": "720p",
        "ratio": "16:9",
        "duration": 5,
        "provider_task_id": f"cgt-{job_id}-{submit_no}",
        "tokens": 108_000,
        "estimated_tokens": 108_000,
        "billed": True,
        "unit_price": 3.5,
        "currency": "USD",
        "cost": 0.378,
        "outcome": "succeeded",
        "requested_at": finished - timedelta(minutes=2),
        "finished_at": finished,
    }
    base.update(fields)
    return LedgerEntry(**base)
