"""The capacity gate's rules, pure: who may send a create to the provider now, and who is next.

The provider limits each account per model (tasks running, creates per minute) and per account
(tasks queued over all models; reference §0 C3, C4). A `Gate` holds one account's view:
the jobs holding a slot (from their grant until their provider task ends), the jobs waiting for
one (ordered by priority, then round-robin across fairness keys, then arrival), and per model
what it has learned. `CapacityGateWorkflow` makes one durable and shared by every worker.

Admission, per model: no more than `concurrency + headroom` tasks in flight (the provider runs
`concurrency` and a small queue of `headroom` hides the create latency), no more than the
learned creates per minute, and never more queued at the provider, over all models, than the
learned account cap. A refusal (429) is backpressure, not failure: the limit it names drops
(multiplicative decrease) and the refused job goes back to the head of its lane; every create
the provider accepts lets the learned limits climb back towards the configured ceilings
(additive increase).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

RPM_WINDOW = timedelta(seconds=60)
PRIORITIES = range(1, 6)
"""1 is first (Temporal's convention); interactive jobs default to 2, batch rows to 4."""
DEFAULT_PRIORITY = 3


class Limit(StrEnum):
    """Which provider limit a refusal names, or which one keeps a job waiting."""

    CONCURRENCY = "concurrency"
    RPM = "rpm"
    QUEUED = "queued"


def limit_of_refusal(code: str) -> Limit:
    """The limit a 429's code names. Unknown codes count as requests per minute: backing off
    the rate is the safe answer to a refusal we cannot read."""
    lowered = code.lower()
    if "queue" in lowered:
        return Limit.QUEUED
    return Limit.RPM


class ModelLimits(BaseModel):
    """The configured ceilings for one model on one account."""

    concurrency: int = Field(ge=1)
    rpm: int = Field(ge=1)
    expected_latency_seconds: float = Field(default=60.0, gt=0)


class GateConfig(BaseModel):
    queued_per_account: int = Field(default=120, ge=1)
    headroom_per_model: int = Field(default=2, ge=0)
    decrease: float = Field(default=0.5, gt=0, lt=1)
    """Learned limit x this on a refusal."""
    increase_share: float = Field(default=0.02, gt=0, le=1)
    """Each accepted create adds this share of the ceiling back to a learned limit."""
    lease_seconds: float = Field(default=300.0, gt=0)
    """A holder not heard from this long is checked (is its job alive, its task running?)."""


class Waiter(BaseModel):
    job_id: str
    model_id: str
    priority: int = DEFAULT_PRIORITY
    fairness_key: str = ""
    since: datetime


class Holder(BaseModel):
    job_id: str
    model_id: str
    granted_at: datetime
    heard_at: datetime
    running: bool = False
    task_id: str | None = None
    orphan: bool = False
    """The job ended while its task may still run: the slot is the task's until it ends."""
    priority: int = DEFAULT_PRIORITY
    fairness_key: str = ""


class ModelState(BaseModel):
    model_id: str
    limits: ModelLimits
    rpm_learned: float
    grants: list[datetime] = Field(default_factory=list)
    """Grant times within the last minute (the creates-per-minute window)."""
    paused_until: datetime | None = None
    refusals: dict[str, int] = Field(default_factory=dict)
    granted_total: int = 0
    lanes: dict[int, dict[str, list[Waiter]]] = Field(default_factory=dict)
    """priority -> fairness key -> FIFO; the dicts keep round-robin order (served key last)."""


class Grant(BaseModel):
    job_id: str
    model_id: str
    at: datetime


class Gate(BaseModel):
    """Serialisable gate state (carried across continue-as-new)."""

    route: str
    config: GateConfig = GateConfig()
    models: dict[str, ModelState] = Field(default_factory=dict)
    holders: dict[str, Holder] = Field(default_factory=dict)
    queued_learned: float = 120.0
    queued_paused_until: datetime | None = None
    refusals_total: int = 0
