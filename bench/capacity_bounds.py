"""How the capacity scenario measured, and what bounds each figure: sentences built from what the
run recorded (its `details`), never written by hand, so they are regenerated with the figures.
"""

from __future__ import annotations

from typing import Any

from bench.capacity_runs import BATCH_PRIORITY, INTERACTIVE_PRIORITY
from bench.plan import Plan
from bench.report import Figure
from bench.stack import EmulatorSpec

MINI_EXPECTED_SECONDS = 30.0
"""`models.mini.expected_latency_seconds` in the shipped config."""
HEADROOM = 2
"""`capacity.headroom_per_model` in the shipped config."""


def how(plan: Plan, spec: EmulatorSpec) -> list[str]:
    scale = plan.capacity_task_seconds / MINI_EXPECTED_SECONDS
    out = [
        f"`python -m bench --only capacity`: the emulator with the published limits "
        f"(`--account enterprise|individual`, reference section 0 C3/C4), Mini's expected "
        f"{MINI_EXPECTED_SECONDS:g} s scaled x{scale:g} to {plan.capacity_task_seconds:g} s "
        f"({spec.queue_seconds:g} s queued, then {spec.run_seconds:g} s holding a running slot, "
        f"+/-{spec.jitter:.0%} jitter); Mini 480p 4 s jobs through two worker processes "
        "(`python worker.py` twice, same queues), callbacks on. A burst is two equal batches "
        f"(batch = fairness key, priority {BATCH_PRIORITY}) started together, rows interleaved, "
        f"at most 32 start calls in flight, and one interactive job (priority "
        f"{INTERACTIVE_PRIORITY}) started at half the ideal makespan.",
        "Baseline: the same burst with `SEEDANCE_CAPACITY__ENABLED=false` (today's behaviour: "
        "429s retried per job, counted against the breaker, then fallback), a fresh emulator "
        "and fresh queues, in the same run.",
        "From the provider's side: refused creates = the emulator's 429s to creates for its "
        "limits / creates it answered; utilisation = time-weighted mean of Mini's running tasks "
        "(`/_emulator/capacity` series) from the first task's start to the last task's start "
        "(while work waited), / the emulator's concurrency; cost = every task's billed tokens "
        "(the emulator's task log) x its model's 480p price, / videos delivered, / Mini's price "
        "of one such video; interactive = its first task's creation at the emulator - its "
        "start call. Makespan = last workflow close - first start; ideal = queue time + "
        "N x run time / concurrency (every slot busy from the first task on).",
        "From the jobs' records: ended by limits = a 429 code or `CapacityWaitExceeded` as the "
        "error; fallbacks = moved to another model right after a refused create; breaker "
        "openings = distinct `opened_at` seen polling each breaker's `state` once a second, "
        "last error a 429 code; batch spread = (later batch's last close - earlier's) / "
        "earlier's, from the first start.",
    ]
    if plan.capacity_learning_jobs:
        out.append(
            f"Learning: the emulator's RPM lowered to {plan.capacity_learning_rpm}/min (10 "
            "running, 120 queued) and every configured limit 3x the enforced one. With one "
            "model only the rate answers 429: tasks over the concurrency wait queued at the "
            "provider and one model's queue stays far under the account's cap. Learned rate = "
            "accepted creates per minute (the emulator's counters, sampled each second) from "
            "one window after the first refusal to the last create, / the enforced RPM. Too "
            "low: the published enterprise limits enforced, a third of them configured."
        )
    if plan.capacity_scale_steps:
        out.append(
            f"Scale: one worker with `SEEDANCE_TEMPORAL__MAX_CACHED_WORKFLOWS="
            f"{plan.capacity_scale_cache}`, tasks that run an hour (12 jobs hold the slots, "
            f"every other job waits at the gate); jobs started in steps "
            f"{', '.join(str(s) for s in plan.capacity_scale_steps)}; after each, until the "
            "gate's `state` counts them waiting and the worker used < 10% of a core for 0.5 s, "
            "then VmRSS (median of 3 reads). Growth = least-squares slope below and past the "
            "cache."
        )
    return out


def _burst(where: str, d: dict[str, Any]) -> str:
    refill = d.get("refill_s") or {}
    text = (
        f"{where}, gate on: {d['jobs']} jobs in {d['makespan']:.0f} s against an ideal of "
        f"{d['ideal']:.0f} s; ramp {d['ramp_s']} s from the first start to the first task "
        f"running (every job's resolve, breaker and gate steps, the starts themselves), the "
        f"last task's {d['drain_s']} s and {d['close_tail_s']} s to store it."
    )
    if refill:
        per = refill["in_flight"] - refill["concurrency"]
        text += (
            f" A freed slot is refilled {refill['p50']} s later (p95 {refill['p95']} s: "
            f"callback, confirming GET, release, grant, create), hidden by the {per} tasks "
            "kept queued at the provider."
        )
    return text


def _today(where: str, d: dict[str, Any]) -> str:
    openings = ", ".join(o["model_alias"] for o in d["breaker_openings"]) or "none"
    return (
        f"{where}, gate off: {d['refused']} refusals for {d['tasks']} tasks "
        f"({d['refusals_per_task_created']:.1f} per task created; {d['refusals_by_code']}), "
        f"outcomes {d['outcomes']}, {d['delivered_on_other_models']} videos made on Fast or "
        f"2.0, breakers opened: {openings}."
    )


PAYLOAD_LIMIT_KB = 2048
"""Temporal's blob size limit (a continue-as-new input is one payload)."""


def _scale(d: dict[str, Any]) -> str:
    rss = ", ".join(f"{k}: {v:.0f}" for k, v in d["rss_mb"].items())
    cached = sorted({int(max(c.values(), default=0)) for c in d.get("sticky_cache", [])})
    per_waiter = d["gate_state_kb"] * 1024 / max(1, d["gate_waiting"] or 1)
    limit = PAYLOAD_LIMIT_KB * 1024 / per_waiter if per_waiter else float("nan")
    return (
        f"Scale: RSS (MB) by jobs started: {rss}. The job worker's sticky cache held "
        f"{cached} runs at every step (`temporal_sticky_cache_size`), so growth past it is "
        f"not cached job runs. What remains (not separated here): the gate's run, which had "
        f"{d.get('gate_events')} events at the steps with waiters (a drop is a continue-as-"
        f"new), and the allocator, which keeps evicted runs' memory for reuse rather than "
        f"returning it. The gate's state with {d['gate_waiting']} waiters is "
        f"{d['gate_state_kb']:.0f} KB ({per_waiter:.0f} bytes per waiter); it is the "
        f"continue-as-new input, so at about {limit:,.0f} waiting jobs it would pass "
        f"Temporal's {PAYLOAD_LIMIT_KB // 1024} MB payload limit."
    )


def bounds(details: dict[str, Any], figures: list[Figure]) -> list[str]:
    out: list[str] = []
    for key in ("enterprise", "individual"):
        if key in details:
            out += [_burst(key, details[key]["gate_on"]), _today(key, details[key]["gate_off"])]
    high = details.get("too_high")
    if high:
        d = high["gate_on"]
        out.append(
            f"3x too high: the first refusal {d['first_refusal_s']} s after the start, "
            f"{d['refusals_in_first_window']} of the {d['refused']} refusals within a window of "
            f"it (finding the limit); the gate ended at {d['gate_at_end']['rpm_learned']} "
            f"creates/min. Without the gate: {high['gate_off']['refused']} refusals, "
            f"{high['gate_off']['fallbacks']} fallbacks."
        )
    low = details.get("too_low")
    if low:
        peaks = ", ".join(f"{p['running']} running" for p in low["peaks"].values())
        out.append(
            f"3x too low: the gate never passes the configured ceilings (learning only lowers "
            f"a limit and climbs back to them), so the provider ran at most {peaks} of its 10: "
            f"the account is used in the configured share, with no refusal; the cure is the "
            f"route's account class or `[account_limits]`."
        )
    scale = details.get("scale")
    if scale:
        out.append(_scale(scale))
    missed = [f.name for f in figures if f.met is False]
    if missed:
        out.append(f"Missed here: {'; '.join(missed)}.")
    return out
