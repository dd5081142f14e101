"""What one capacity burst showed: its figures, read from a `BurstRun` (the emulator's task log,
capacity block and series, the jobs' records, the breakers' and the gate's states).

Pure: `bench.scenarios.capacity` runs the bursts and judges these; the arithmetic itself is
`bench.capacity_figures`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench import capacity_figures as cf
from bench.capacity_runs import BurstRun
from bench.stats import percentile
from seedance_pipeline.core.models import GenerationRequest, Outcome
from seedance_pipeline.core.pricing import estimate
from seedance_pipeline.core.settings import Settings

ROUTE = "byteplus"
LEARNING_WINDOW = 60.0
"""A learned rate counts from one RPM window after the first refusal found the limit."""


@dataclass(frozen=True)
class Prices:
    """Per model ID, the route's price per 1M tokens at 480p; Mini's price of one video."""

    per_model: dict[str, float]
    mini_video: float
    mini_id: str

    @classmethod
    def of(cls, settings: Settings) -> Prices:
        per_model = {}
        for alias in ("mini", "fast", "pro"):
            spec = settings.model(alias)
            per_model[spec.ids[ROUTE]] = spec.prices[ROUTE].at("480p").standard
        mini = settings.model("mini")
        req = GenerationRequest(prompt="x", model="mini", duration=4, resolution="480p")
        video = estimate(req, mini, mini.prices[ROUTE], "USD", resolution="480p", ratio="16:9")
        return cls(per_model=per_model, mini_video=video.cost, mini_id=mini.ids[ROUTE])


@dataclass(frozen=True)
class Shown:
    jobs: int
    succeeded: int
    ended_by_limits: int
    fallbacks: int
    openings: int
    cost_ratio: float
    """Cost per delivered video / Mini's price of one."""
    refused: int
    creates: int
    tasks: int
    utilisation: float
    """Mean running tasks of Mini / the provider's concurrency, while work was waiting."""
    makespan: float
    ideal: float
    interactive_seconds: float
    spread: float
    learned_rate: float
    """Accepted creates per minute once the limit was found (one window after the first
    refusal, to the last create), of the provider's RPM."""
    details: dict[str, Any]

    @property
    def refused_share(self) -> float:
        return cf.refused_share(self.refused, self.creates)

    @property
    def makespan_ratio(self) -> float:
        return self.makespan / self.ideal

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "details"}
        out.update(refused_share=self.refused_share, makespan_ratio=self.makespan_ratio)
        return out | self.details


def show(run: BurstRun, prices: Prices) -> Shown:
    b, spec = run.burst, run.burst.provider
    records = list(run.records.values())
    concurrency = b.concurrency
    window = cf.busy_window(run.tasks, prices.mini_id)
    util = math.nan
    if window is not None:
        series = run.capacity.get("series") or []
        running = cf.mean_running(series, prices.mini_id, window.first_start, window.last_start)
        util = running / concurrency
    delivered = sum(1 for r in records if r.outcome == Outcome.SUCCEEDED)
    finishes = {k: max(run.closes[j] for j in ids) for k, ids in run.batches.items()}
    refused = cf.refusals(run.capacity)
    return Shown(
        jobs=len(records),
        succeeded=delivered,
        ended_by_limits=len(cf.ended_by_limits(records)),
        fallbacks=len(cf.fallbacks_by_limits(records)),
        openings=len(cf.openings_by_limits(run.openings)),
        cost_ratio=cf.cost_per_delivered(run.tasks, prices.per_model, delivered)
        / prices.mini_video,
        refused=refused,
        creates=run.creates,
        tasks=len(run.tasks),
        utilisation=util,
        makespan=max(run.closes.values()) - run.started,
        ideal=cf.ideal_makespan(len(records), spec.run_seconds, concurrency, spec.queue_seconds),
        interactive_seconds=_interactive(run),
        spread=cf.finish_spread(finishes, run.started) if len(finishes) > 1 else math.nan,
        learned_rate=_learned_rate(run),
        details=_details(run, window, finishes, refused),
    )


def _interactive(run: BurstRun) -> float:
    if not run.interactive_id or run.interactive_started is None:
        return math.nan
    first = cf.first_create(run.tasks, run.interactive_id)
    return first - run.interactive_started if first is not None else math.inf


def _learned_rate(run: BurstRun) -> float:
    """Accepted creates per minute, once learned, of the provider's RPM."""
    rpm = run.burst.enforced.rpm
    first = cf.first_refusal_at(run.refused_samples)
    start = (first + LEARNING_WINDOW) if first is not None else run.started
    creates = sorted(float(t["created_at"]) for t in run.tasks)
    if not creates or creates[-1] <= start:
        return math.nan
    return cf.creates_per_minute(run.created_samples, start, creates[-1]) / rpm


def _details(
    run: BurstRun, window: cf.BusyWindow | None, finishes: dict[str, float], refused: int
) -> dict[str, Any]:
    records = list(run.records.values())
    first_refusal = cf.first_refusal_at(run.refused_samples)
    return {
        "outcomes": dict(Counter(r.outcome.value if r.outcome else "none" for r in records)),
        "error_codes": dict(
            Counter(r.error.code for r in records if r.error and r.outcome != Outcome.SUCCEEDED)
        ),
        "delivered_on_other_models": cf.delivered_on_other_models(records, "mini"),
        "refusals_per_task_created": refused / len(run.tasks) if run.tasks else math.nan,
        "refusals_by_code": dict(run.capacity.get("rate_limited") or {}),
        "first_refusal_s": round(first_refusal - run.started, 1) if first_refusal else None,
        "refusals_in_first_window": cf.refusals_between(
            run.refused_samples, run.started, (first_refusal or run.started) + LEARNING_WINDOW
        ),
        "breaker_openings": [o.__dict__ for o in run.openings],
        "ramp_s": round(window.first_start - run.started, 2) if window else None,
        "busy_window_s": round(window.seconds, 1) if window else None,
        "drain_s": round(window.last_finish - window.last_start, 2) if window else None,
        "close_tail_s": round(max(run.closes.values()) - window.last_finish, 2) if window else None,
        "refill_s": refill_latency(run),
        "batch_finish_s": {k: round(v - run.started, 1) for k, v in finishes.items()},
        "cores_used": run.cores,
        "wall_s": round(run.seconds, 1),
        "peaks": {
            m: {"running": v.get("peak_running"), "queued": v.get("peak_queued")}
            for m, v in (run.capacity.get("models") or {}).items()
        },
        "gate_at_end": _gate_at_end(run),
        "emulator": run.burst.provider.argv(),
        "configured": run.burst.configured.__dict__,
        "gate": run.burst.gate,
    }


def refill_latency(run: BurstRun) -> dict[str, float] | None:
    """From a slot freeing at the provider to the create that refills it: with the gate
    keeping `concurrency + headroom` in flight, the k-th finish lets the (k + in flight)-th
    create in. The loop the headroom must hide: the callback, the confirming GET, the
    release, the grant and the create."""
    concurrency = run.burst.concurrency
    in_flight = min(run.burst.configured.concurrency, 10**6) + 2
    if not run.burst.gate or len(run.tasks) < 3 * in_flight:
        return None
    created = sorted(float(t["created_at"]) for t in run.tasks)
    finished = sorted(float(t["finished_at"]) for t in run.tasks if t.get("finished_at"))
    lags = [created[k + in_flight] - finished[k] for k in range(len(created) - in_flight)]
    return {
        "p50": round(percentile(lags, 50), 3),
        "p95": round(percentile(lags, 95), 3),
        "concurrency": concurrency,
        "in_flight": in_flight,
    }


def _gate_at_end(run: BurstRun) -> dict[str, Any] | None:
    g = run.gate
    if g is None:
        return None
    return {
        "rpm_learned": {m: round(s.rpm_learned, 1) for m, s in g.models.items()},
        "queued_learned": round(g.queued_learned, 1),
        "holders": len(g.holders),
        "waiting": g.waiting(),
        "refusals_total": g.refusals_total,
    }
