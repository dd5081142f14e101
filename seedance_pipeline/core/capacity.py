"""The capacity gate's rules, pure: who may send a create to the provider now, and who is next.

The provider limits each account per model (tasks running, creates per minute) and per account
(tasks queued over all models; reference §0 C3, C4). A `Gate` holds one account's view:
the jobs holding a slot (from their grant until their provider task ends), the jobs waiting for
one (ordered by priority, then round-robin across fairness keys, then arrival), and per model
what it has learned. `CapacityGateWorkflow` makes one durable and shared by every worker.

Admission, per model: no more than `concurrency + headroom` tasks in flight (the provider runs
`concurrency` and a small queue of `headroom` hides the create latency), no more than the
learned creates per minute (in any minute, and paced: after a burst as deep as the model's
slots, creates are spread at the learned rate), and never more queued at the provider, over
all models, than the learned account cap. A refusal (429) is backpressure, not failure: the
limit it names drops and the refused job goes back to the head of its lane; creates the
provider accepts let the learned limits climb back towards the configured ceilings.

Learning the rate (creates per minute) is AIMD with the window as evidence. A refused create
says the provider's limit is below what our own window held, so a cut goes just under that
(`RATE_MARGIN`) at once when the window is our traffic's (it held at least `trust_share` of
the learned rate): from a ceiling 3x too high the rate is found in one cut. A refusal with a
near-empty window (other clients on the account) says little about the limit, so the rate
then drops by `decrease` only. The window a refusal is judged by reaches back by the refused
create's lag (creates reach the provider late, and it counts by arrival), and forgets no grant
the provider may still count. Refusals of creates sent before a cut are the same news and
teach nothing more. A refusal also empties the pace's bucket: the slots refused creates give
back are refilled at the learned rate, not all at once into a window that is full (which
drew a storm of refusals, each one a further cut). The climb back is additive per window: a
minute of accepted creates at the learned rate adds `increase_share` of the ceiling, so the
rate probes past the limit once in a while instead of a few creates after every cut.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

RPM_WINDOW = timedelta(seconds=60)
AFTER_REFUSAL_DEPTH = 3.0
"""The pace's bucket for a minute after a refusal: no burst into a full window, yet enough
that a gate woken late by a busy server loses no creates to a full bucket."""
MAX_LAG = timedelta(seconds=30)
"""A refusal's window reaches back by the refused create's own lag (grant to answer), at most
this much."""
GRANT_MEMORY = 2 * RPM_WINDOW
"""Grants are kept this long, past the window: a refusal reaches the gate seconds after its
create was granted (the create's latency, the job's signal back), and what the provider's
window held then is counted from the grants of the minute before the create, some of which
the window itself has already dropped (forgetting them made a refusal look like a limit 20%
lower than the provider's, and cut the rate to it)."""
RATE_MARGIN = 0.95
"""A rate learned from the window is set this far under it: our grant times and the
provider's arrival times differ by the create's latency, so a window exactly at the limit
still draws the odd refusal."""
PRIORITIES = range(1, 6)
"""1 is first (Temporal's convention); interactive jobs default to 2, batch rows to 4."""
DEFAULT_PRIORITY = 3
INTERACTIVE_PRIORITY = 2
"""A single job someone waits for (`generate`, `POST /v1/jobs`)."""
BATCH_PRIORITY = 4
"""Rows of a batch (`batch`, `POST /v1/batches`)."""


def gate_id(route: str, scope: str = "") -> str:
    """One gate per route's account: `capacity:byteplus` (`@scope` when namespaces are shared)."""
    return f"capacity:{route}" + (f"@{scope}" if scope else "")


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
    """A refusal cuts a learned limit to this share of it (the rate: when the window it saw
    was not our traffic's; the account's queued cap: always)."""
    trust_share: float = Field(default=0.25, gt=0, le=1)
    """A refusal whose window held at least this share of the learned rate was drawn by our
    own creates: the rate goes straight to just under that window."""
    increase_share: float = Field(default=0.02, gt=0, le=1)
    """Share of the ceiling given back to a learned limit per minute of accepted creates at
    the learned rate (the rate), per accepted create (the account's queued cap)."""
    lease_seconds: float = Field(default=300.0, gt=0)
    """A holder not heard from this long is checked (is its job alive, its task running?)."""
    audit_seconds: float = Field(default=60.0, gt=0)
    refusal_pause_seconds: float = Field(default=1.0, ge=0)
    """After a refusal without Retry-After, the limit it named admits nothing for this long."""


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
    """Grant times of the last `GRANT_MEMORY` (the creates-per-minute window is the last
    minute of them)."""
    paused_until: datetime | None = None
    pace: float = 0.0
    paced_at: datetime | None = None
    """The pace's bucket (creates it allows) as of `paced_at`; None: full."""
    rate_cut_at: datetime | None = None
    """When a refusal last lowered the learned rate: creates granted before it were sent at
    the old rate, and their refusals teach nothing new."""
    rate_bound: float | None = None
    """The creates the first refusal of the last minute saw in the provider's window, less
    one: the provider's limit is at most this (less, when other clients share the account)."""
    rate_bound_at: datetime | None = None
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
    waiting_ids: dict[str, str] = Field(default_factory=dict)
    """job ID -> model ID of every waiter (the lanes hold their order)."""
    queued_learned: float = 120.0
    queued_paused_until: datetime | None = None
    refusals_total: int = 0

    # ---- what jobs tell the gate -----------------------------------------------------------

    def model(self, model_id: str, limits: ModelLimits) -> ModelState:
        """The model's state, with the ceilings the latest request carried (a config change
        applies without a deploy; the learned rate never exceeds the new ceiling)."""
        state = self.models.get(model_id)
        if state is None:
            state = ModelState(model_id=model_id, limits=limits, rpm_learned=float(limits.rpm))
            self.models[model_id] = state
        state.limits = limits
        state.rpm_learned = min(state.rpm_learned, float(limits.rpm))
        return state

    def request(self, waiter: Waiter, limits: ModelLimits, *, first: bool = False) -> None:
        """Queue a job for a slot on its model (a repeated request is one request)."""
        if waiter.job_id in self.holders or waiter.job_id in self.waiting_ids:
            return
        lane = self.model(waiter.model_id, limits).lanes.setdefault(waiter.priority, {})
        queue = lane.setdefault(waiter.fairness_key, [])
        queue.insert(0, waiter) if first else queue.append(waiter)
        self.waiting_ids[waiter.job_id] = waiter.model_id

    def ahead_of(self, waiter: Waiter) -> int:
        """How many of its model's waiters go before this one at most (same or higher
        priority): an estimate of its place that costs no scan of the whole queue."""
        state = self.models.get(waiter.model_id)
        if state is None:
            return 0
        return sum(
            len(q)
            for p, lanes in state.lanes.items()
            if p <= waiter.priority
            for q in lanes.values()
        )

    def release(
        self, job_id: str, *, task_id: str | None, still_running: bool, now: datetime
    ) -> None:
        """The job's task ended (or never existed): the slot is free. `still_running`: the job
        ended but its task may still run; the slot stays the task's until a check says it ended."""
        holder = self.holders.get(job_id)
        if holder is None:
            self.withdraw(job_id)
            return
        if still_running and task_id:
            holder.orphan, holder.task_id, holder.heard_at = True, task_id, now
            return
        if task_id:
            self._accepted(holder.model_id)
        del self.holders[job_id]

    def refused(self, job_id: str, code: str, retry_after: float | None, now: datetime) -> Limit:
        """A create was refused with 429: learn, pause if told to, and put the job back at the
        head of its lane (it keeps its turn)."""
        limit = limit_of_refusal(code)
        holder = self.holders.pop(job_id, None)
        self.refusals_total += 1
        if holder is None:
            return limit
        state = self.models[holder.model_id]
        state.refusals[code] = state.refusals.get(code, 0) + 1
        pause = now + timedelta(seconds=retry_after or self.config.refusal_pause_seconds)
        if limit == Limit.QUEUED:
            # What we had queued when the provider said "full" is the best guess of its cap.
            queued = self.queued_at_provider() + 1
            self.queued_learned = max(1.0, min(self.queued_learned, queued) * self.config.decrease)
            self.queued_paused_until = _later(self.queued_paused_until, pause)
        else:
            self._learn_rate(state, holder.granted_at, now)
            state.paused_until = _later(state.paused_until, pause)
            state.pace, state.paced_at = 0.0, now  # the freed slots refill at the rate
        waiter = Waiter(
            job_id=job_id,
            model_id=holder.model_id,
            priority=holder.priority,
            fairness_key=holder.fairness_key,
            since=holder.granted_at,
        )
        self.request(waiter, state.limits, first=True)
        return limit

    def _learn_rate(self, state: ModelState, granted_at: datetime, now: datetime) -> None:
        """A create granted at `granted_at` was refused for the rate: lower the learned one
        by `RATE_MARGIN`, and further, to just under the window the minute's first refusal
        saw (the provider's limit is below it); or, when that window was nearly empty (other
        clients, not a limit of zero), by `decrease`."""
        # The provider's window when the refused create arrived: our creates of the minute up
        # to it, itself included (not those granted since, while its answer was on its way),
        # and those granted up to its own lag earlier: creates reach the provider late, by
        # seconds when the workers are busy (a burst's first creates, granted at once, arrive
        # over several), so the provider still counts some our minute has passed.
        lag = min(now - granted_at, MAX_LAG)
        since = granted_at - RPM_WINDOW - lag
        seen = sum(1 for t in state.grants if since < t <= granted_at)
        # The first refusal of a minute sets the bound for that minute. Later ones neither
        # loosen it (refused creates may count in the provider's window) nor tighten it: the
        # creates a burst sent at once reach the provider over seconds when the workers are
        # busy, so a minute later it still counts some our window has dropped, and a bound
        # taken then sits a quarter under the limit.
        if not _refused_lately(state, now) or state.rate_bound is None:
            state.rate_bound, state.rate_bound_at = float(seen - 1), now
        elif seen - 1 < state.rate_bound * RATE_MARGIN:
            return  # fewer of ours than the limit: late arrivals it still counts; the pause
        if state.rate_cut_at is not None and granted_at < state.rate_cut_at:
            return  # sent at the old rate: the last cut already answered this refusal
        if state.rate_bound >= state.rpm_learned * self.config.trust_share:
            learned = min(state.rpm_learned, state.rate_bound) * RATE_MARGIN
        else:
            learned = state.rpm_learned * self.config.decrease
        state.rpm_learned = max(1.0, learned)
        state.rate_cut_at = now

    def withdraw(self, job_id: str) -> None:
        """A waiting job gave up (cancelled, or its wait bound passed)."""
        model_id = self.waiting_ids.pop(job_id, None)
        state = self.models.get(model_id or "")
        if state is None:
            return
        for lanes in state.lanes.values():
            for key, queue in lanes.items():
                lanes[key] = [w for w in queue if w.job_id != job_id]

    # ---- who goes next ---------------------------------------------------------------------

    def admit(self, now: datetime) -> list[Grant]:
        """Every grant the limits allow now, best first per model."""
        grants: list[Grant] = []
        for state in self.models.values():
            self._forget_old_grants(state, now)
            while self.blocked_by(state, now) is None:
                waiter = self._pop_next(state)
                if waiter is None:
                    break
                grants.append(self._grant(state, waiter, now))
        return grants

    def blocked_by(self, state: ModelState, now: datetime) -> Limit | None:
        """Which limit keeps the next waiter of this model waiting, if any."""
        in_flight = sum(1 for h in self.holders.values() if h.model_id == state.model_id)
        if in_flight >= state.limits.concurrency + self.config.headroom_per_model:
            return Limit.CONCURRENCY
        if (
            (state.paused_until and now < state.paused_until)
            or len(_in_window(state, now)) >= int(state.rpm_learned)
            or self._pace(state, now) < 1
        ):
            return Limit.RPM
        queued_after = self.queued_at_provider() + (
            1 if in_flight >= state.limits.concurrency else 0
        )
        paused = self.queued_paused_until is not None and now < self.queued_paused_until
        if paused or queued_after > int(self.queued_learned):
            return Limit.QUEUED
        return None

    def queued_at_provider(self) -> int:
        """Tasks the provider holds queued, over all models: per model, those in flight beyond
        the concurrency it runs (an estimate that needs no report from the jobs)."""
        total = 0
        for state in self.models.values():
            mine = [h for h in self.holders.values() if h.model_id == state.model_id]
            total += max(0, len(mine) - state.limits.concurrency)
        return total

    def next_wake(self, now: datetime) -> datetime | None:
        """When a limit only time lifts (the rate window, a pause) lifts next, if a job waits."""
        times: list[datetime] = []
        for state in self.models.values():
            if not self._has_waiters(state):
                continue
            window = _in_window(state, now)
            if window and len(window) >= int(state.rpm_learned):
                times.append(window[0] + RPM_WINDOW)
            short = 1 - self._pace(state, now)
            if short > 0:
                times.append(now + timedelta(seconds=short * 60 / state.rpm_learned))
            if state.paused_until and state.paused_until > now:
                times.append(state.paused_until)
            if self.queued_paused_until and self.queued_paused_until > now:
                times.append(self.queued_paused_until)
        return min(times) if times else None

    def place(self, job_id: str) -> int | None:
        """The job's place among its model's waiters (1 = next), or None when not waiting."""
        for state in self.models.values():
            ordered = self._ordered(state)
            for index, waiter in enumerate(ordered):
                if waiter.job_id == job_id:
                    return index + 1
        return None

    def waiting(self) -> int:
        return sum(
            len(q)
            for s in self.models.values()
            for lanes in s.lanes.values()
            for q in lanes.values()
        )

    def limit_value(self, state: ModelState, limit: Limit) -> float:
        """The current value of `limit` for this model (learned where the gate learns it)."""
        if limit == Limit.RPM:
            return state.rpm_learned
        if limit == Limit.QUEUED:
            return self.queued_learned
        return float(state.limits.concurrency + self.config.headroom_per_model)

    def stale_holders(self, now: datetime) -> list[Holder]:
        """Holders not heard from for a lease (their job may be gone): to be checked."""
        cutoff = now - timedelta(seconds=self.config.lease_seconds)
        return [h for h in self.holders.values() if h.orphan or h.heard_at <= cutoff]

    def still_held(self, job_id: str, now: datetime) -> None:
        """A check found the holder's job alive (or its task still running)."""
        if job_id in self.holders:
            self.holders[job_id].heard_at = now

    # ---- internals -------------------------------------------------------------------------

    def _pace(self, state: ModelState, now: datetime) -> float:
        """Creates the pace allows now: a bucket as deep as the model's slots (the burst a
        burst start needs), refilled at the learned rate. For a minute after a refusal it
        holds a few: the provider's window is full then, and a burst of creates into the room
        our own window sees (as a burst's first creates leave it, while the provider, which
        got them late, still counts them) was refused all at once."""
        slots = float(state.limits.concurrency + self.config.headroom_per_model)
        depth = min(slots, AFTER_REFUSAL_DEPTH) if _refused_lately(state, now) else slots
        if state.paced_at is None:
            return depth
        refill = (now - state.paced_at).total_seconds() * state.rpm_learned / 60
        return min(depth, state.pace + refill)

    def _grant(self, state: ModelState, waiter: Waiter, now: datetime) -> Grant:
        state.pace, state.paced_at = self._pace(state, now) - 1, now
        self.holders[waiter.job_id] = Holder(
            job_id=waiter.job_id,
            model_id=state.model_id,
            granted_at=now,
            heard_at=now,
            priority=waiter.priority,
            fairness_key=waiter.fairness_key,
        )
        state.grants.append(now)
        state.granted_total += 1
        return Grant(job_id=waiter.job_id, model_id=state.model_id, at=now)

    def _accepted(self, model_id: str) -> None:
        """The provider took a create: let the learned limits climb back towards the ceilings."""
        state = self.models.get(model_id)
        if state is not None:
            # Per window, not per create: `rpm_learned` accepted creates (a minute at the
            # learned rate) add `increase_share` of the ceiling.
            ceiling = float(state.limits.rpm)
            step = self.config.increase_share * ceiling / max(1.0, state.rpm_learned)
            state.rpm_learned = min(ceiling, state.rpm_learned + step)
        ceiling = float(self.config.queued_per_account)
        self.queued_learned = min(
            ceiling, self.queued_learned + self.config.increase_share * ceiling
        )

    def _pop_next(self, state: ModelState) -> Waiter | None:
        for priority in sorted(state.lanes):
            lanes = state.lanes[priority]
            for key in list(lanes):
                queue = lanes.pop(key)
                if not queue:
                    continue
                waiter = queue.pop(0)
                if queue:
                    lanes[key] = queue  # served: to the back of the round-robin
                self.waiting_ids.pop(waiter.job_id, None)
                return waiter
        return None

    def _ordered(self, state: ModelState) -> list[Waiter]:
        """The waiters in the order `_pop_next` would serve them."""
        ordered: list[Waiter] = []
        for priority in sorted(state.lanes):
            queues = [list(q) for q in state.lanes[priority].values() if q]
            while queues:
                ordered += [q.pop(0) for q in queues]
                queues = [q for q in queues if q]
        return ordered

    def _has_waiters(self, state: ModelState) -> bool:
        return any(q for lanes in state.lanes.values() for q in lanes.values())

    @staticmethod
    def _forget_old_grants(state: ModelState, now: datetime) -> None:
        cutoff = now - GRANT_MEMORY
        state.grants = [t for t in state.grants if t > cutoff]


def _refused_lately(state: ModelState, now: datetime) -> bool:
    """A refusal of the last minute set the rate's bound (it is that minute's evidence)."""
    return state.rate_bound_at is not None and now - state.rate_bound_at < RPM_WINDOW


def _in_window(state: ModelState, now: datetime) -> list[datetime]:
    """The grants of the creates-per-minute window ending now, oldest first."""
    cutoff = now - RPM_WINDOW
    return [t for t in state.grants if t > cutoff]


def _later(current: datetime | None, new: datetime | None) -> datetime | None:
    if current is None or new is None:
        return current or new
    return max(current, new)


# ---- messages between jobs and the gate (asks by update; the rest signals) ------------------


class GateRef(BaseModel):
    """Where a job finds its account's gate, and the limits it asks under (pinned by resolve)."""

    gate_id: str
    task_queue: str
    route: str
    limits: ModelLimits
    config: GateConfig
    max_wait_seconds: float


class CapacityRequest(BaseModel):
    waiter: Waiter
    limits: ModelLimits


class CapacityRelease(BaseModel):
    job_id: str
    task_id: str | None = None
    still_running: bool = False


class CapacityReleases(BaseModel):
    """A worker's releases for one gate, gathered for a moment and sent as one signal (the
    reads that found their tasks succeeded)."""

    releases: list[CapacityRelease]


class CapacityRefusal(BaseModel):
    job_id: str
    code: str
    retry_after_seconds: float | None = None


class CapacityGranted(BaseModel):
    """Gate -> job: the slot is yours until your provider task ends."""

    model_id: str
    at: datetime


class CapacityWaiting(BaseModel):
    """Gate -> job, in the answer to its ask, when the slot cannot be granted at once."""

    model_id: str
    ahead: int
    blocked_by: Limit
    limit_value: float
    """The limit's current (learned) value."""
    estimate_seconds: float


class HolderCheck(BaseModel):
    job_id: str
    task_id: str | None = None
    orphan: bool = False


class HolderChecks(BaseModel):
    """Gate -> activity: are these holders' jobs alive, and their tasks still running?"""

    route: str
    holders: list[HolderCheck]


class HolderCheckResult(BaseModel):
    released: list[str] = Field(default_factory=list)
    """Slots to free: the job is gone and its task ended (or never existed)."""
    alive: list[str] = Field(default_factory=list)
    """Slots still held: the job runs, or its task still runs at the provider."""


class GateAsk(BaseModel):
    """Job -> gate, carried by the job's create: a slot, please (the create runs only when
    the answer is yes). A repeated ask is one request and gets the same answer."""

    ref: GateRef
    request: CapacityRequest


class CapacityAnswer(BaseModel):
    """Gate -> job, in answer to its ask: the slot at once, or why it must wait. A waiter's
    grant comes later, as the `capacity_granted` signal."""

    granted: CapacityGranted | None = None
    waiting: CapacityWaiting | None = None
    """Why the job waits (None with no grant: queued behind others while nothing blocks)."""


class CapacityAsks(BaseModel):
    """A worker's asks for one gate, gathered for a moment and sent as one update (Temporal
    allows only a few updates in flight per workflow)."""

    asks: list[CapacityRequest]


class CapacityAnswers(BaseModel):
    answers: dict[str, CapacityAnswer] = Field(default_factory=dict)
    """By job ID."""
