"""One broken promise, found by an invariant (`chaos.invariants`, `chaos.paid_work`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    subject: str
    """A job ID, `ledger:<job>/<submit>` for a ledger row, `task:<id>` for a provider task,
    `money:<currency>` for a total, `s3:<key>` for an object."""
    detail: str
