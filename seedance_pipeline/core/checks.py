"""What `doctor` reports: one verdict per piece, each with its fix, from the CLI's side and
from the worker's (which answers for its own settings, keys and network, through Temporal).

A warning is something a user should know that does not stop jobs (a route nobody uses has
no key); only failures make `doctor` exit non-zero.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum

from pydantic import BaseModel, Field

from seedance_pipeline.core.settings import Settings


class CheckStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


class Check(BaseModel):
    name: str
    status: CheckStatus
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status != CheckStatus.FAIL


def ok(name: str, detail: str) -> Check:
    return Check(name=name, status=CheckStatus.OK, detail=detail)


def warn(name: str, detail: str, fix: str = "") -> Check:
    return Check(name=name, status=CheckStatus.WARN, detail=detail, fix=fix)


def fail(name: str, detail: str, fix: str = "") -> Check:
    return Check(name=name, status=CheckStatus.FAIL, detail=detail, fix=fix)


class WorkerChecksInput(BaseModel):
    """Input of `WorkerChecksWorkflow` and its `worker_checks` activity."""

    probe_provider: bool = True
    """Ask each route with a key for one page of its task list (free) to prove the key."""
    requested_by: str = ""
    """Who asked (the CLI's identity), for the worker's log."""


class WorkerReport(BaseModel):
    """The worker's own checks, made with the worker's settings and environment."""

    identity: str
    """The worker process that answered (`pid@host`)."""
    job_queue: str
    submit_queue: str
    health_queue: str
    polled: dict[str, list[str]] = Field(default_factory=dict)
    """queue -> the poller kinds (workflow, activity) Temporal lists for this worker."""
    checks: list[Check] = Field(default_factory=list)
    models_digest: str = ""
    """`models_digest` of the worker's settings: the CLI validates requests with its own."""

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def models_digest(settings: Settings) -> str:
    """A fingerprint of the model table (IDs, limits, prices) and the default model: the
    starter validates and estimates with its copy, the worker resolves with its own, and
    the two must agree for a refusal or an estimate to mean anything."""
    data = settings.model_dump(mode="json", include={"models", "default_model"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
