"""Results of a chaos run: `chaos/results/latest.json` and `docs/reliability.md`.

The Markdown is generated, never edited by hand: a table per scenario (jobs, faults injected by
kind with counts from the emulator's own hit counters and the harness's kill/restart counters,
each invariant's result, jobs lost, duplicate billed tasks, mismatched records), the totals, the
machine and how it was run.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import summary
from chaos.disruptions import KillRecord
from chaos.invariants import Violation
from chaos.suites import SuiteResult

SHOWN_VIOLATIONS = 20
REQUIRED_KILL_PHASES = ("submit", "wait", "copy", "ledger")
"""Where worker kills must land, per the issue."""


@dataclass
class InvariantResult:
    key: str
    title: str
    holds: bool
    violations: int
    examples: list[dict[str, str]]

    @classmethod
    def of(cls, key: str, title: str, found: list[Violation]) -> InvariantResult:
        return cls(
            key=key,
            title=title,
            holds=not found,
            violations=len(found),
            examples=[{"subject": v.subject, "detail": v.detail} for v in found[:SHOWN_VIOLATIONS]],
        )


@dataclass
class ScenarioResult:
    key: str
    title: str
    kind: str
    jobs: int = 0
    deployment: str = ""
    """Workers, storage and ledger the scenario ran on."""
    injected: list[str] = field(default_factory=list)
    """What the scenario injected, in words (fault phases, disruptions, reruns)."""
    money: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per currency: what the provider billed and what the ledger records."""
    provider_killed_urls: list[str] = field(default_factory=list)
    """Billed tasks whose URL the emulator expired early on purpose (never downloadable)."""
    seconds: float = 0.0
    wall_to_last_close: float = 0.0
    note: str = ""
    outcomes: dict[str, int] = field(default_factory=dict)
    error_codes: dict[str, int] = field(default_factory=dict)
    """Error codes of the jobs that did not succeed (the record's, verbatim)."""
    faults: dict[str, int] = field(default_factory=dict)
    effects: dict[str, int] = field(default_factory=dict)
    callbacks: dict[str, int] = field(default_factory=dict)
    invariants: dict[str, InvariantResult] = field(default_factory=dict)
    kills: list[KillRecord] = field(default_factory=list)
    kill_phases: dict[str, int] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    slowest_job: dict[str, Any] = field(default_factory=dict)
    provider_tasks: int = 0
    billed_tasks: int = 0
    billed_not_in_ledger: list[dict[str, Any]] = field(default_factory=list)
    """Tasks the provider billed that no ledger row records, with their job's ending."""
    capacity: dict[str, Any] = field(default_factory=dict)
    """The capacity gate after the jobs closed: slots held, jobs waiting, grants, refusals."""
    required_kill_phases: list[str] = field(default_factory=lambda: list(REQUIRED_KILL_PHASES))
    jobs_lost: int = 0
    duplicate_billed: int = 0
    mismatched: int = 0
    error: str | None = None

    @property
    def holds(self) -> bool:
        return (
            self.error is None
            and bool(self.invariants)
            and all(i.holds for i in self.invariants.values())
        )


@dataclass
class RunResult:
    mode: str
    command: str
    machine: dict[str, Any]
    seed: int
    scenarios: list[ScenarioResult]
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    seconds: float = 0.0
    results_file: str = ""
    suites: list[SuiteResult] = field(default_factory=list)
    """The bad-input and security suites (`chaos.suites`), when this run ran them."""

    @property
    def holds(self) -> bool:
        suites_pass = all(not s.failed for s in self.suites)
        return bool(self.scenarios) and all(s.holds for s in self.scenarios) and suites_pass

    def totals(self) -> dict[str, Any]:
        faults: dict[str, int] = {}
        for s in self.scenarios:
            for kind, n in s.faults.items():
                faults[kind] = faults.get(kind, 0) + n
        return {
            "scenarios": len(self.scenarios),
            "jobs": sum(s.jobs for s in self.scenarios),
            "faults": dict(sorted(faults.items())),
            "faults_injected": sum(faults.values()),
            "jobs_lost": sum(s.jobs_lost for s in self.scenarios),
            "duplicate_billed": sum(s.duplicate_billed for s in self.scenarios),
            "mismatched": sum(s.mismatched for s in self.scenarios),
            "security_tests_passed": sum(s.passed for s in self.suites),
            "security_tests_failed": sum(s.failed for s in self.suites),
            "invariants_hold": self.holds,
        }


def to_json(run: RunResult) -> dict[str, Any]:
    data = dataclasses.asdict(run)
    data["totals"] = run.totals()
    for scenario, raw in zip(run.scenarios, data["scenarios"], strict=True):
        raw["holds"] = scenario.holds
    return data


def write_json(run: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(run), indent=2, sort_keys=False, default=str) + "\n")


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


def _mark(ok: bool) -> str:
    return "holds" if ok else "**VIOLATED**"


def _scenario_md(s: ScenarioResult) -> list[str]:
    lines = [f"### {s.key}: {s.title}", ""]
    if s.note:
        lines += [s.note, ""]
    if s.error:
        lines += [f"**The scenario did not complete:** `{s.error}`", ""]
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(s.outcomes.items())) or "none"
    faults = ", ".join(f"{k} {v}" for k, v in s.faults.items()) or "none"
    if s.injected:
        lines += ["Injected:", "", *[f"- {i}" for i in s.injected], ""]
    money = "; ".join(
        f"{c} billed {m['billed']:.2f}, recorded {m['recorded']:.2f}" for c, m in s.money.items()
    )
    lines += [
        "| | |",
        "| --- | --- |",
        f"| deployment | {s.deployment or '-'} |",
        f"| jobs | {s.jobs} ({outcomes}) |",
        f"| why jobs did not succeed | {_pairs(s.error_codes)} |",
        f"| faults injected | {faults} |",
        f"| provider tasks | {s.provider_tasks} created, {s.billed_tasks} billed |",
        f"| callbacks (emulator) | {_pairs(s.callbacks)} |",
        f"| jobs lost | {s.jobs_lost} |",
        f"| duplicate billed tasks | {s.duplicate_billed} |",
        f"| mismatched records | {s.mismatched} |",
        f"| money | {money or '-'} |",
    ]
    if s.provider_killed_urls:
        lines.append(
            f"| billed, URL expired early by the provider | {len(s.provider_killed_urls)} "
            "(not judged: no fresh URL exists) |"
        )
    if s.capacity:
        c = s.capacity
        lines.append(
            f"| capacity gate after the jobs closed | {c['held_at_end']} slots held, "
            f"{c['waiting_at_end']} waiting ({c['granted']} grants, {c['refusals']} refusals) |"
        )
    for inv in s.invariants.values():
        lines.append(f"| {inv.title} | {_mark(inv.holds)} ({inv.violations} violations) |")
    last = f"last job closed at t+{s.wall_to_last_close:.0f} s"
    lines.append(f"| time | {s.seconds:.0f} s ({last}) |")
    if s.slowest_job:
        slow = s.slowest_job
        lines.append(
            f"| slowest job | `{slow['job_id']}`: {slow['seconds']:.0f} s, its deadline "
            f"{slow['deadline_seconds']} s |"
        )
    if s.effects:
        lines.append(f"| effects | {_pairs(s.effects)} |")
    lines.append("")
    if s.kills:
        lines += [
            "Kills, and what the running jobs were doing right after each, read from Temporal: "
            "activities the killed worker had started and not finished (the work the kill "
            "interrupted), and each job's `JobState`:",
            "",
            "| # | at | mode | running jobs | interrupted on the killed worker | job states | "
            "restart |",
            "| ---: | ---: | --- | ---: | --- | --- | ---: |",
        ]
        for n, k in enumerate(s.kills, 1):
            acts = _pairs(dict(sorted(k.activities.items())))
            states = _pairs(dict(sorted(k.job_states.items())))
            lines.append(
                f"| {n} | {k.at:.0f} s | {k.mode} ({k.worker}) | {k.jobs_running} | {acts} | "
                f"{states} | "
                f"{k.restart_seconds:.1f} s |"
            )
        phases = ", ".join(f"{p} {n}" for p, n in s.kill_phases.items())
        required = s.required_kill_phases
        missing = [p for p in required if not s.kill_phases.get(p)]
        covered = "yes" if not missing else f"no, never during {', '.join(missing)}"
        lines += [
            "",
            f"Kills that landed with a job in each phase: {phases} (submit = create_task, "
            "find_tasks or task_owners interrupted, or a job in `submitting`; wait = a job in "
            "`queued`/`running` or get_task interrupted; copy = copy_output; ledger = "
            "record_cost; manifest = write_manifest; route/resolve = breaker and model "
            "resolution; capacity = a job in `waiting_for_capacity`).",
            "",
            f"Kills landed during {_phase_list(required)}: **{covered}**.",
            "",
        ]
    events = [e for e in s.events if "SIGKILL" not in e]  # kills have their own table
    if events:
        lines += ["What happened, when:", ""]
        lines += [f"- `{e}`" for e in events[:30]]
        lines.append("")
    if s.billed_not_in_ledger:
        lines += [
            f"Billed by the provider but in no ledger row ({len(s.billed_not_in_ledger)}; "
            "not one of the invariants, see *What this does not cover*):",
            "",
        ]
        for u in s.billed_not_in_ledger[:10]:
            lines.append(
                f"- task `{u['task_id']}` ({u['billed_tokens']} tokens), made for job "
                f"`{u['job_id']}`, which ended {u['job_outcome']} ({u['error_code']}) with "
                f"provider task {u['job_task_id']}: {u['error_message']}"
            )
        lines.append("")
    for inv in s.invariants.values():
        if inv.examples:
            lines.append(f"Violations of *{inv.title}*:")
            lines.append("")
            lines += [f"- `{v['subject']}`: {v['detail']}" for v in inv.examples]
            lines.append("")
    return lines


PHASE_WORDS = {"ledger": "ledger write", "capacity": "the wait for capacity"}


def _phase_list(phases: list[str]) -> str:
    words = [PHASE_WORDS.get(p, p) for p in phases]
    return ", ".join(words[:-1]) + f" and {words[-1]}" if len(words) > 1 else "".join(words)


def _suites_md(run: RunResult) -> list[str]:
    if not run.suites:
        return []
    passed = sum(s.passed for s in run.suites)
    failed = sum(s.failed for s in run.suites)
    lines = [
        "## Bad input and security",
        "",
        f"The suites that attack the pipeline's edges, run by this command and by `make test`: "
        f"**{passed} passed, {failed} failed**. Property-based ones use hypothesis; pipeline "
        "ones run real jobs on the dev or time-skipping server against the emulator and assert "
        "that no workflow task failed.",
        "",
        "| module | what it attacks | passed | failed |",
        "| --- | --- | ---: | ---: |",
    ]
    lines += [
        f"| `{s.module}` | {s.attacks} | {s.passed} | "
        f"{s.failed if not s.failed else f'**{s.failed}**'} |"
        for s in run.suites
    ]
    return [*lines, ""]


def to_markdown(run: RunResult) -> str:
    t = run.totals()
    m = run.machine
    lines = [
        "# Reliability",
        "",
        *summary.block(summary.load(summary.BENCH_RESULTS), to_json(run)),
        "",
        "Generated by `make chaos` (`python -m chaos`); do not edit by hand. Every scenario runs "
        "against the embedded stack (Temporal dev server on a SQLite file, the ModelArk "
        "emulator, the webhook receiver, `python worker.py`) with its faults, on the "
        "deployment it names (one worker on a directory and a SQLite ledger, or two workers on "
        "S3 (moto server) and a Postgres ledger), then every invariant is checked from the "
        "sources of truth: Temporal's histories, the emulator's task log and file digests, the "
        "ledger and the stored objects.",
        "",
        f"**Every invariant holds: {'yes' if run.holds else 'NO'}.**",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| scenarios | {t['scenarios']} |",
        f"| jobs run | {t['jobs']} |",
        f"| faults injected | {t['faults_injected']} |",
        f"| jobs lost | {t['jobs_lost']} |",
        f"| duplicate billed tasks | {t['duplicate_billed']} |",
        f"| mismatched records | {t['mismatched']} |",
        f"| bad-input and security tests | {t['security_tests_passed']} passed, "
        f"{t['security_tests_failed']} failed |",
        "",
        "Faults injected per kind (`provider:*` from the emulator's own hit counters, the rest "
        "from the harness's kill/restart/cut counters):",
        "",
        "| kind | count |",
        "| --- | ---: |",
    ]
    lines += [f"| {k} | {v} |" for k, v in t["faults"].items()]
    lines += [
        "",
        "## Scenarios",
        "",
        "| scenario | kind | jobs | faults | jobs lost | duplicate billed | mismatched | "
        "invariants |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in run.scenarios:
        nfaults = sum(s.faults.values())
        lines.append(
            f"| {s.key} | {s.kind} | {s.jobs} | {nfaults} | {s.jobs_lost} | "
            f"{s.duplicate_billed} | {s.mismatched} | "
            f"{'all hold' if s.holds else '**violated**'} |"
        )
    lines.append("")
    for s in run.scenarios:
        lines += _scenario_md(s)
    lines += [
        "## The invariants",
        "",
        "1. **Every job terminal within its deadline**: closed with a record in a terminal state "
        "and an outcome, no later than its own deadline after it started: the model's queue + "
        "execution deadline per provider task it waited for, plus a fixed slack for creates, "
        "reconciles, copies and timeouts of activities orphaned by a kill.",
        "2. **No job with more than one billed provider task**: from the emulator's task log "
        "(each task names its job in its prompt); `billed_tokens > 0` counts as billed.",
        "3. **Succeeded jobs complete**: the stored video's sha256 and size equal the emulator's "
        "for that task (read from its admin digest, whatever the URL's expiry), the last frame "
        "likewise when asked, the manifest names the task and the sha256, and the ledger row "
        "for that task has the provider's usage tokens and is billed.",
        "4. **No ledger row without a job**: every row's job was started by this run, its "
        "task is in the provider's log under that job, and its tokens are the provider's "
        "billed tokens for that task (whatever the job's outcome).",
        "5. **No job state moved backwards**: the `JobState` values the job was started with "
        "and then upserted, in history order, only move forward "
        "(`core.job_state.job_moves_forward`); so does the record's timeline, and the "
        "published states appear in it in the same order, ending where it ends (a job "
        "publishes `submitting` only with its next change).",
        "",
        "6. **Every billed task in the ledger with the provider's tokens**: each task the "
        "emulator billed has exactly one ledger row (or an unattributed record) with its "
        "`billed_tokens`, billed, whatever happened to its job (cancel, deadline, outage, rerun, "
        "ambiguous create).",
        "7. **Every billed succeeded task's video stored**: an object of its own under its "
        "job's folders with the emulator's sha256 and size (a rerun's video beside the first "
        "run's, not over it). Tasks whose URL the emulator expired early on purpose "
        "(`url_expires_early`: no fresh URL exists) are counted apart, not judged.",
        "8. **Money recorded = money billed, to the cent**: per currency, the ledger's billed "
        "rows and unattributed records for the scenario's tasks against the emulator's tokens "
        "at the list price of each task's model.",
        "9. **No multipart upload left open** in the bucket after the scenario (S3 "
        "deployments), kills mid-copy included.",
        "",
        "Jobs lost = violations of 1; duplicate billed tasks = violations of 2; mismatched "
        "records = jobs violating 3 plus rows violating 4.",
        "",
        *_suites_md(run),
        "## What this does not cover",
        "",
        "- moto is S3's API, not its failure modes: throttling (503 SlowDown) and eventual "
        "consistency are not injected.",
        "- A job whose output URL expired before its copy ends `failed_infra` (`OutputExpired`) "
        "though the provider billed it (its ledger row records the tokens): the emulator hands "
        "out the same signed URL on every GET (whether the real provider signs a fresh one is "
        "not documented), so the workflow's fresh GET cannot help. Those are outcomes, not "
        "lost jobs.",
        "- An ambiguous create whose task never announces itself (its callbacks dropped, or the "
        "webhook receiver down) while the provider's list shows it unclaimed ends the job "
        "`failed_infra` (`AmbiguousSubmit`) by design: with callbacks on, the workflow never "
        "adopts a task from the list alone, since it may be another job's. The provider still "
        "runs and bills that task, and no ledger row records it (the attempt has no task ID). "
        "The run lists such tasks per scenario under *Billed by the provider but in no ledger "
        "row*; they are not counted as duplicate billing (the job has at most that one task).",
        "- Timings are not reproducible: the seed fixes the emulator's coin tosses and the "
        "gaps between kills, not where in a job each kill lands.",
        "",
        "## How it was run",
        "",
        f"- command: `{run.command}` ({run.mode} plan, seed {run.seed}), started "
        f"{run.started_at}, {run.seconds:.0f} s in all",
        f"- machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, "
        f"{m.get('ram_gib', '?')} GiB RAM, {m.get('os', '?')}; Python {m.get('python', '?')}, "
        f"temporalio {m.get('temporalio', '?')}, temporal CLI {m.get('temporal_cli', '?')}; "
        f"load average at start {m.get('loadavg_at_start', '?')} (the machine is shared)",
        f"- results: `{run.results_file}`",
        "",
    ]
    return "\n".join(lines)


def write_markdown(run: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_markdown(run))
