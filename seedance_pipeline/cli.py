"""The CLI: start, watch and steer generation jobs on the stack that is running.

Thin over `clients/`: every command reaches the Temporal `clients.target` picks (saying so when
it is not the default), validates its flags and the request before anything starts, writes
results to stdout and diagnostics to stderr, and turns every error a user can act on into one
line and an exit code (`clients.cli_session`): 0 done (succeeded, with --wait), 1 a job did
not succeed, 2 a bad flag, request, file or config or a refused operation, 3 Temporal
unreachable, 4 unknown job, 5 no worker polls the queue.
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from temporalio.client import Client
from typer.exceptions import Abort

from seedance_pipeline.clients import doctor_live
from seedance_pipeline.clients.batch_file import (
    BatchPlan,
    BatchRow,
    batch_key,
    parse_media,
    read_batch,
)
from seedance_pipeline.clients.capacity import gate_views
from seedance_pipeline.clients.cli_output import Output, table
from seedance_pipeline.clients.cli_session import (
    EXIT_BUG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    BadArgument,
    failure,
    new_session,
    session,
)
from seedance_pipeline.clients.costs_cli import app as costs_app
from seedance_pipeline.clients.doctor import doctor
from seedance_pipeline.clients.health import breaker_states, force_breaker
from seedance_pipeline.clients.jobs import cancel_job, job_status, poke_job, start_job
from seedance_pipeline.clients.ops import (
    extend_job,
    is_manifest_source,
    list_jobs,
    list_query,
    regeneration,
)
from seedance_pipeline.clients.pollers import NoWorker, require_worker
from seedance_pipeline.clients.reconcile_cli import app as reconcile_app
from seedance_pipeline.clients.reference_hosts import check_reference_hosts
from seedance_pipeline.clients.runs import RunSummary, follower_views, job_runs
from seedance_pipeline.clients.temporal_setup import ensure_search_attributes
from seedance_pipeline.core.capacity import BATCH_PRIORITY, INTERACTIVE_PRIORITY
from seedance_pipeline.core.checks import Check, CheckStatus
from seedance_pipeline.core.estimate import estimate
from seedance_pipeline.core.follow import FollowerView
from seedance_pipeline.core.job_id import derive_job_id
from seedance_pipeline.core.job_state import TERMINAL_JOB_STATES
from seedance_pipeline.core.models import (
    EXTEND_MAX_MINUTES,
    JOB_ID_PATTERN,
    GenerationRequest,
    JobRecord,
    JobState,
    Outcome,
    Reference,
)
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.core.validation import validate_request
from seedance_pipeline.observability.logging import configure_logging

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Seedance generation jobs on Temporal.",
)
app.add_typer(costs_app)
app.add_typer(reconcile_app)


@app.callback()
def _load_settings() -> None:
    """Seedance generation jobs on Temporal."""
    # Every command checks this shell's settings first: a value the worker would refuse is
    # refused here too (exit 2), not carried along and silently ignored. Help still shows.
    if "--help" not in session().argv:
        session().settings()


DEBUG_ENV = "SEEDANCE_DEBUG"
RECORD_FIELDS = (
    "job_id",
    "state",
    "outcome",
    "model",
    "model_id",
    "route",
    "provider_task_id",
    "resolution",
    "ratio",
    "duration",
    "tokens",
    "cost",
    "currency",
    "video_uri",
    "last_frame_uri",
    "manifest_uri",
)


def _out() -> Output:
    return session().out


def _settings() -> Settings:
    return session().settings()


async def _client() -> Client:
    return await session().client()


# ---- arguments ---------------------------------------------------------------------------


def _job_id(value: str, what: str = "JOB_ID") -> str:
    if not JOB_ID_PATTERN.fullmatch(value):
        shown = repr(value) if value else "empty"
        raise BadArgument(
            f"{what} {shown}: 1-128 characters of letters, digits and . _ : -, starting "
            "with a letter or digit"
        )
    return value


def _references(
    images: Sequence[str], videos: Sequence[str], audios: Sequence[str]
) -> list[Reference]:
    refs: list[Reference] = []
    for flag, kind, specs in (("--image", "image", images), ("--video", "video", videos)):
        for spec in specs:
            refs.append(_media(flag, spec, kind))
    refs += [_media("--audio", spec, "audio") for spec in audios]
    return refs


def _media(flag: str, spec: str, kind: str) -> Reference:
    try:
        return parse_media(spec, kind)
    except ValueError as exc:
        raise BadArgument(f"{flag} {exc}") from None


def _checked(request: GenerationRequest, settings: Settings) -> None:
    """Every problem of the request against this shell's model table, one line each."""
    problems = [str(p) for p in validate_request(request, settings)]
    if problems:
        raise BadArgument("\n".join(problems))


async def _public_references(
    requests: list[tuple[str, GenerationRequest]], settings: Settings
) -> None:
    """Refuse references on private or loopback hosts before anything starts."""
    verdicts = await check_reference_hosts(requests, settings)
    for warning in verdicts.warnings:
        _out().warn(warning)
    if verdicts.problems:
        raise BadArgument("\n".join(verdicts.problems))


def _estimate(settings: Settings, request: GenerationRequest) -> tuple[int, float, str]:
    """Tokens, cost and currency before anything is paid: what the job's `resolve_model`
    will record (`core.estimate`, the one estimate)."""
    guess = estimate(request, settings)
    return guess.tokens, guess.cost, guess.currency


# ---- records -----------------------------------------------------------------------------


def _print_record(record: JobRecord, as_json: bool) -> None:
    out = _out()
    if as_json:
        out.json(record.summary())
        return
    s = record.summary()
    t = table("field", "value")
    t.show_header = False
    t.box = None
    for key in RECORD_FIELDS:
        if s.get(key) is not None:
            t.add_row(key, str(s[key]))
    if record.error:
        t.add_row("error", f"{record.error.code}: {record.error.message}")
    out.table(t)
    if record.timeline:
        out.result("timeline")
        for change in record.timeline:
            out.result(f"  {change.at.isoformat()}  {change.state.value} {change.note}")
    if len(record.attempts) > 1 or any(a.error for a in record.attempts):
        out.result("attempts")
        for a in record.attempts:
            err = f" {a.error.code}: {a.error.message}" if a.error else ""
            out.result(
                f"  #{a.submit_no} {a.model_id} task={a.provider_task_id} status={a.status}{err}"
            )


def _succeeded(record: JobRecord) -> bool:
    return record.outcome == Outcome.SUCCEEDED


async def _wait_for(
    client: Client, job_id: str, quiet: bool = False, on_state: Callable[[str], None] | None = None
) -> JobRecord:
    """Follow a job until its record is final, through the `status` query (which answers for
    finished jobs too, whether their workflow completed or failed)."""
    last: JobState | None = None
    while True:
        record = await job_status(client, job_id)
        if on_state is not None:
            on_state(record.state.value)
        if not quiet and record.state != last:
            _out().info(f"{job_id} {record.state.value}")
            last = record.state
        if record.state in TERMINAL_JOB_STATES:
            return record
        await asyncio.sleep(0.5)


async def _warn_without_worker(client: Client, settings: Settings) -> None:
    """Jobs are durable and wait for a worker; say so when none polls right now."""
    await _warn_if_nobody_acts(client, settings.temporal.task_queue, "jobs start")


async def _warn_if_nobody_acts(client: Client, queue: str, what: str) -> None:
    try:
        await require_worker(client, queue)
    except NoWorker as exc:
        _out().warn(f"{exc.with_log(session().worker_log())}; {what} when one does")


# ---- jobs --------------------------------------------------------------------------------


@app.command()
def generate(
    prompt: str,
    model: Annotated[str | None, typer.Option(help="model alias (mini, fast, pro, ...)")] = None,
    duration: Annotated[int, typer.Option(help="seconds (-1: model chooses)")] = 5,
    resolution: Annotated[str | None, typer.Option()] = None,
    ratio: Annotated[str | None, typer.Option()] = None,
    image: Annotated[
        list[str] | None, typer.Option(help="URL[:ROLE] (first_frame, last_frame, ...)")
    ] = None,
    video: Annotated[list[str] | None, typer.Option(help="reference video URL")] = None,
    audio: Annotated[list[str] | None, typer.Option(help="reference audio URL")] = None,
    keep_last_frame: Annotated[
        bool, typer.Option("--keep-last-frame", help="also store the output's last frame")
    ] = False,
    generate_audio: Annotated[
        bool | None,
        typer.Option(
            "--generate-audio/--no-generate-audio", help="audio track (default: the model's)"
        ),
    ] = None,
    watermark: Annotated[
        bool, typer.Option("--watermark/--no-watermark", help="provider watermark")
    ] = False,
    seed: Annotated[int, typer.Option()] = -1,
    route: Annotated[str | None, typer.Option()] = None,
    service_tier: Annotated[str, typer.Option(help="default or flex")] = "default",
    job_id: Annotated[str | None, typer.Option(help="your idempotency key")] = None,
    candidate: Annotated[
        int, typer.Option(min=0, max=99, help="candidate index of the same prompt")
    ] = 0,
    rerun: Annotated[bool, typer.Option(help="run again even if the job finished")] = False,
    priority: Annotated[
        int, typer.Option(min=1, max=5, help="1 goes first at the capacity gate (batches: 4)")
    ] = INTERACTIVE_PRIORITY,
    wait: Annotated[bool, typer.Option("--wait", help="wait for the outcome")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Start one generation job (validated first; a duplicate start returns the same job)."""
    settings = _settings()
    if job_id is not None:
        _job_id(job_id, "--job-id")
    refs = _references(image or [], video or [], audio or [])
    try:
        request = GenerationRequest(
            prompt=prompt,
            model=model,
            duration=duration,
            resolution=resolution,
            ratio=ratio,
            references=tuple(refs),
            return_last_frame=keep_last_frame,
            generate_audio=generate_audio,
            watermark=watermark,
            seed=seed,
            route=route,
            service_tier=service_tier,  # validated by pydantic
        )
    except ValueError as exc:
        raise BadArgument(_pydantic_line(exc)) from None
    _checked(request, settings)
    tokens, estimate, currency = _estimate(settings, request)

    async def go() -> int:
        await _public_references([("", request)], settings)
        if not as_json:
            _out().info(f"estimate: {tokens:,} tokens, about {estimate:.4f} {currency}")
        client = await _client()
        await _warn_without_worker(client, settings)
        started = await start_job(
            client,
            settings,
            request,
            job_id=job_id,
            candidate=candidate,
            rerun=rerun,
            priority=priority,
        )
        if not wait:
            if as_json:
                _out().json(
                    {
                        "job_id": started.job_id,
                        "existed": started.existed,
                        "estimated_tokens": tokens,
                        "estimated_cost": estimate,
                        "currency": currency,
                    }
                )
            else:
                verb = "already exists" if started.existed else "started"
                _out().result(f"job {started.job_id} {verb}")
            return 0
        if not as_json:
            _out().info(
                f"job {started.job_id} {'already exists' if started.existed else 'started'}"
            )
        record = await _wait_for(client, started.job_id, quiet=as_json)
        _print_record(record, as_json)
        return 0 if _succeeded(record) else EXIT_FAILED

    raise typer.Exit(asyncio.run(go()))


def _pydantic_line(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors())
    return str(exc)


def _on_job(job_id: str, action: Callable[[Client], Any]) -> None:
    """Run one operation on an existing job (its ID checked first)."""
    _job_id(job_id)

    async def go() -> None:
        await action(await _client())

    asyncio.run(go())


@app.command()
def status(job_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show a job: state timeline, attempts, error, URIs, cost (finished jobs too); every
    earlier run of the job ID (reruns add, never replace) and what its task followers stored
    after it ended."""

    async def show(client: Client) -> None:
        record = await job_status(client, job_id)
        runs, followers = await asyncio.gather(
            job_runs(client, job_id), follower_views(client, record)
        )
        if as_json:
            summary = record.summary()
            summary["runs"] = [r.as_dict() for r in runs]
            summary["followers"] = [f.model_dump(mode="json") for f in followers]
            _out().json(summary)
            return
        _print_record(record, as_json=False)
        _print_runs(runs, followers)

    _on_job(job_id, show)


def _print_runs(runs: list[RunSummary], followers: list[FollowerView]) -> None:
    out = _out()
    if len(runs) > 1:
        out.result(f"runs ({len(runs)}, oldest first)")
        for run in runs:
            cost = f" {run.cost} {run.currency}" if run.cost is not None else ""
            out.result(
                f"  {run.run_id} {run.status.lower()} {run.outcome or ''}{cost} "
                f"video={run.video_uri or '-'} manifest={run.manifest_uri or '-'}"
            )
    for view in followers:
        done = view.result
        what = f"following (polls {view.progress.polls})"
        if done is not None:
            video = done.video.uri if done.video else "-"
            what = f"{done.outcome.value} tokens={done.tokens} video={video}"
        out.result(f"follower of task {view.task_id or '?'}: {what} {view.problem}")


@app.command()
def cancel(job_id: str) -> None:
    """Cancel a running job (a queued provider task is deleted at the provider)."""

    async def act(client: Client) -> None:
        queue = await cancel_job(client, job_id)
        _out().result(f"cancellation requested for {job_id}")
        await _warn_if_nobody_acts(client, queue, "the job is cancelled")

    _on_job(job_id, act)


@app.command()
def poke(job_id: str) -> None:
    """Ask a running job to check the provider now (for a callback you know was lost)."""

    async def act(client: Client) -> None:
        queue = await poke_job(client, job_id)
        _out().result(f"poked {job_id}")
        await _warn_if_nobody_acts(client, queue, "the job checks the provider")

    _on_job(job_id, act)


@app.command()
def extend(
    job_id: str,
    minutes: Annotated[
        int, typer.Option(min=1, max=EXTEND_MAX_MINUTES, help="how much later (minutes)")
    ],
) -> None:
    """Move a running job's deadline later (refused for finished jobs and past the maximum)."""

    async def act(client: Client) -> None:
        record = await extend_job(client, job_id, minutes)
        _out().result(
            f"{job_id}: deadline extended, {record.deadline_extension_minutes} min in all"
        )

    _on_job(job_id, act)


# ---- batch -------------------------------------------------------------------------------


def _progress_text(states: dict[str, str], outcomes: Counter[str]) -> str:
    """In-flight jobs by state, finished ones by outcome: `running=3 queued=1 | succeeded=5`."""
    live = " ".join(f"{k}={v}" for k, v in sorted(Counter(states.values()).items()))
    done = " ".join(f"{k}={v}" for k, v in sorted(outcomes.items()))
    return " | ".join(part for part in (live, done) if part) or "starting"


@app.command()
def batch(
    file: Path,
    concurrency: Annotated[int, typer.Option(min=1, help="jobs in flight at once")] = 20,
    wait: Annotated[bool, typer.Option(help="wait for every job to finish")] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="validate and estimate every row; start nothing")
    ] = False,
    priority: Annotated[
        int, typer.Option(min=1, max=5, help="1 goes first at the capacity gate")
    ] = BATCH_PRIORITY,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run a JSONL/CSV batch: validate every row first, start, follow, summarise.

    The batch's rows share one fairness key (the file), so two batches take turns at the
    capacity gate and a single `generate` (priority 2) goes before both."""
    settings = _settings()
    if not file.is_file():
        raise BadArgument(f"no such file: {file}")
    try:
        rows, problems = read_batch(file, settings)
    except (OSError, UnicodeDecodeError) as exc:
        raise BadArgument(f"cannot read {file}: {exc}") from None
    if not problems:
        labelled = [(f"line {r.line}: ", r.request) for r in rows]
        verdicts = asyncio.run(check_reference_hosts(labelled, settings))
        for warning in verdicts.warnings:
            _out().warn(warning)
        problems_text = list(verdicts.problems)
    else:
        problems_text = [str(p) for p in problems]
    if problems_text:
        raise BadArgument(
            "\n".join(problems_text) + f"\n{len(problems_text)} problem(s); nothing was started"
        )
    jobs = [(row, c) for row in rows for c in range(row.candidates)]
    if dry_run:
        _dry_run(settings, jobs, as_json)
        return
    plan = BatchPlan(file=file, key=batch_key(file), priority=priority)
    raise typer.Exit(asyncio.run(_run_batch(settings, plan, jobs, concurrency, wait, as_json)))


def _planned_id(row: BatchRow, candidate: int) -> str:
    return row.job_id or derive_job_id(row.request, candidate)


def _dry_run(settings: Settings, jobs: list[tuple[BatchRow, int]], as_json: bool) -> None:
    """Every job the batch would start, its estimate, and the totals per currency."""
    planned = []
    totals: dict[str, float] = {}
    tokens_total = 0
    for row, candidate in jobs:
        tokens, estimate, currency = _estimate(settings, row.request)
        tokens_total += tokens
        totals[currency] = totals.get(currency, 0.0) + estimate
        planned.append(
            {
                "line": row.line,
                "job_id": _planned_id(row, candidate),
                "model": row.request.model or settings.default_model,
                "resolution": row.request.resolution
                or settings.model(row.request.model or settings.default_model).default_resolution,
                "duration": row.request.duration,
                "estimated_tokens": tokens,
                "estimated_cost": estimate,
                "currency": currency,
            }
        )
    cost_totals = {c: round(v, 6) for c, v in sorted(totals.items())}
    if as_json:
        _out().json(
            {
                "dry_run": True,
                "jobs": planned,
                "total": {"jobs": len(planned), "tokens": tokens_total, "cost": cost_totals},
            }
        )
        return
    t = table("line", "job", "model", "res", "dur", "tokens", "cost", title="batch (dry run)")
    for p in planned:
        t.add_row(
            str(p["line"]),
            str(p["job_id"]),
            str(p["model"]),
            str(p["resolution"]),
            str(p["duration"]),
            f"{p['estimated_tokens']:,}",
            f"{p['estimated_cost']:.4f} {p['currency']}",
        )
    _out().table(t)
    money = ", ".join(f"{v:.4f} {c}" for c, v in cost_totals.items())
    _out().result(f"total: {len(planned)} jobs, {tokens_total:,} tokens, about {money}")
    _out().info("dry run: nothing was started")


async def _run_batch(
    settings: Settings,
    plan: BatchPlan,
    jobs: list[tuple[BatchRow, int]],
    concurrency: int,
    wait: bool,
    as_json: bool,
) -> int:
    client = await _client()
    await _warn_without_worker(client, settings)
    gate = asyncio.Semaphore(concurrency)
    records: dict[str, JobRecord] = {}
    started: dict[str, bool] = {}
    """job ID -> it existed already (a rerun of the same file starts nothing new)."""
    outcomes: Counter[str] = Counter()
    states: dict[str, str] = {}
    out = _out()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out.err,
        disable=as_json or not out.err.is_terminal,
        transient=True,
    ) as progress:
        bar = progress.add_task("jobs", total=len(jobs))

        async def one(row: BatchRow, candidate: int) -> None:
            async with gate:
                job = await start_job(
                    client,
                    settings,
                    row.request,
                    job_id=row.job_id,
                    candidate=candidate,
                    priority=plan.priority,
                    batch=plan.key,
                )
                started[job.job_id] = job.existed
                if wait:

                    def seen(state: str, job_id: str = job.job_id) -> None:
                        states[job_id] = state
                        progress.update(bar, description=_progress_text(states, outcomes))

                    record = await _wait_for(client, job.job_id, quiet=True, on_state=seen)
                    states.pop(job.job_id, None)
                    records[job.job_id] = record
                    outcomes[record.outcome.value if record.outcome else "unknown"] += 1
                progress.update(bar, advance=1, description=_progress_text(states, outcomes))

        try:
            await asyncio.gather(*(one(row, c) for row, c in jobs))
        except BaseException:
            _interrupted(plan.file, started, len(jobs), as_json)
            raise
    if as_json:
        out.json(
            {
                "jobs": [r.summary() for r in records.values()],
                "started": list(started),
                "outcomes": dict(outcomes),
            }
        )
    elif not wait:
        t = table("job", "status", title=f"{len(started)} job(s) started")
        for job_id, existed in started.items():
            t.add_row(job_id, "existed" if existed else "started")
        out.table(t)
        out.info("follow them with `starter.py status JOB_ID`, `starter.py list` or the Web UI")
    else:
        t = table("job", "outcome", "model", "res", "dur", "tokens", "cost", "video / error")
        t.title = "batch summary"
        for record in records.values():
            t.add_row(
                record.job_id,
                record.outcome.value if record.outcome else "-",
                record.model_alias or "-",
                record.resolution or "-",
                str(record.duration),
                str(record.tokens or 0),
                f"{record.cost or 0:.4f} {record.currency or ''}",
                record.video_uri or (record.error.code if record.error else "-"),
            )
        out.table(t)
    if not wait:
        return 0
    return 0 if all(_succeeded(r) for r in records.values()) else EXIT_FAILED


def _interrupted(file: Path, started: dict[str, bool], total: int, as_json: bool) -> None:
    """What started keeps running: list it (stdout) and say how to pick up the rest."""
    out = _out()
    if as_json:
        out.json({"interrupted": True, "started": list(started), "total": total})
    else:
        for job_id in started:
            out.result(job_id)
    out.info(
        f"interrupted: {len(started)} of {total} job(s) started and keep running (IDs above). "
        f"Resume with `starter.py batch {file}`: jobs already started are not started again"
    )


# ---- list, regenerate --------------------------------------------------------------------


@app.command(name="list")
def list_(
    state: Annotated[str | None, typer.Option(help="JobState, e.g. running")] = None,
    outcome: Annotated[str | None, typer.Option(help="e.g. rejected_moderation")] = None,
    model: Annotated[str | None, typer.Option(help="model alias")] = None,
    since: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 200,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List jobs by state, outcome, model and start date (Temporal visibility)."""
    for flag, value, allowed in (
        ("--state", state, [s.value for s in JobState]),
        ("--outcome", outcome, [o.value for o in Outcome]),
    ):
        if value is not None and value not in allowed:
            raise BadArgument(f"{flag} {value!r}: not one of {', '.join(allowed)}")
    try:
        query = list_query(state, outcome, model, date.fromisoformat(since) if since else None)
    except ValueError as exc:
        raise BadArgument(f"invalid filter: {exc}") from None

    async def go() -> None:
        rows = await list_jobs(await _client(), query, limit)
        if as_json:
            _out().json(rows)
            return
        t = table(
            "job",
            "status",
            "state",
            "outcome",
            "model",
            "task",
            "cost",
            "error",
            "started",
            title=f"{len(rows)} job(s): {query}",
        )
        for r in rows:
            t.add_row(
                r["job_id"],
                (r["status"] or "-").lower(),
                r["state"] or "-",
                r["outcome"] or "-",
                r["model"] or "-",
                r["provider_task_id"] or "-",
                f"{r['cost']:.4f}" if r["cost"] is not None else "-",
                r["error_code"] or "-",
                (r["started"] or "-")[:19],
            )
        _out().table(t)

    asyncio.run(go())


@app.command()
def regenerate(
    source: Annotated[str, typer.Argument(help="JOB_ID or a manifest URI/path")],
    model_id: Annotated[str | None, typer.Option(help="use another exact model ID")] = None,
    same_seed: Annotated[bool, typer.Option(help="pin the seed the provider used")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="send a model ID that is not in config anyway")
    ] = False,
    wait: Annotated[bool, typer.Option("--wait")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Start a new job with exactly the stored request (prompt, references, parameters, model
    ID with its date suffix); refused when that model ID left config, unless --force."""
    settings = _settings()
    manifest = is_manifest_source(source)
    if not manifest:
        _job_id(source, "SOURCE")

    async def go() -> int:
        client = None if manifest else await _client()
        try:
            regen = await regeneration(client, settings, source, model_id, same_seed)
        except (OSError, ValueError) as exc:
            raise BadArgument(f"{source}: {exc}") from None
        if regen.unknown_model_id and not force:
            raise BadArgument(
                f"{regen.warnings[0]}; the provider may no longer serve it. Pass --force to "
                "send it anyway, or --model-id with a configured ID"
            )
        for warning in regen.warnings:
            _out().warn(warning)
        _checked(regen.request, settings)
        await _public_references([("", regen.request)], settings)
        client = client or await _client()
        started = await start_job(client, settings, regen.request)
        if as_json and not wait:
            _out().json({"job_id": started.job_id, "warnings": regen.warnings})
            return 0
        line = f"regenerated {source} as job {started.job_id} ({regen.request.model_id})"
        (_out().info if wait else _out().result)(line)
        if not wait:
            return 0
        record = await _wait_for(client, started.job_id, quiet=as_json)
        _print_record(record, as_json)
        return 0 if _succeeded(record) else EXIT_FAILED

    raise typer.Exit(asyncio.run(go()))


# ---- doctor, setup -----------------------------------------------------------------------


@app.command(name="doctor")
def doctor_(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    live: Annotated[
        bool, typer.Option("--live", help="check the route against the provider (free calls)")
    ] = False,
    paid: Annotated[
        bool,
        typer.Option("--paid", help="with --live: one real 4 s 480p Mini job (about $0.14)"),
    ] = False,
    route: Annotated[str | None, typer.Option(help="route for --live (default route)")] = None,
    report: Annotated[Path | None, typer.Option(help="where --live writes its report")] = None,
) -> None:
    """Check the stack: this shell's connection, then the worker's own settings, keys,
    storage, ledger, callbacks and queues (asked through Temporal). Exit 1 on a failure.
    `--live` checks a route against the real provider from this shell (its key needed)."""
    if live or paid:
        out = _out()
        raise typer.Exit(
            doctor_live.command(
                _settings(),
                route_name=route,
                paid=paid,
                report_path=report,
                as_json=as_json,
                say=out.info,
                out=out.result,
                fail=out.error,
                client_factory=_client,
            )
        )
    raise typer.Exit(asyncio.run(_doctor(as_json)))


async def _doctor(as_json: bool) -> int:
    client = await _client()
    target = session().target
    assert target is not None  # set by connecting
    report = await doctor(client, target, _settings())
    out = _out()
    if as_json:
        out.json(report.as_dict())
        return 0 if report.ok else EXIT_FAILED
    out.result("this shell (CLI)")
    for check in report.cli:
        _print_check(check)
    if report.worker is not None:
        out.result(f"worker {report.worker.identity} (its own settings)")
        for check in report.worker.checks:
            _print_check(check)
    failed = [c for c in report.checks if not c.ok]
    out.result(
        "doctor: every check passed"
        if not failed
        else f"doctor: {len(failed)} check(s) failed: {', '.join(c.name for c in failed)}"
    )
    return 0 if report.ok else EXIT_FAILED


def _print_check(check: Check) -> None:
    mark = {CheckStatus.OK: "ok  ", CheckStatus.WARN: "warn", CheckStatus.FAIL: "FAIL"}
    line = f"  {mark[check.status]} {check.name}: {check.detail}"
    if check.status != CheckStatus.OK and check.fix:
        line += f"\n         fix: {check.fix}"
    _out().result(line)


@app.command()
def setup() -> None:
    """Register the search attributes on an existing Temporal cluster (operator service)."""

    async def go() -> None:
        added = await ensure_search_attributes(await _client())
        _out().result(
            f"registered: {', '.join(added)}"
            if added
            else "every search attribute was already registered"
        )

    asyncio.run(go())


# ---- health ------------------------------------------------------------------------------


@app.command()
def capacity(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show each route's capacity gate: slots held and jobs waiting per model, and the limits
    it has learned from the provider's refusals (against the configured ceilings)."""
    settings = _settings()

    async def go() -> None:
        views = await gate_views(await _client(), settings)
        if as_json:
            _out().json([v.as_dict() for v in views])
            return
        t = table(
            "route",
            "model",
            "held/ceiling",
            "waiting",
            "creates/min (learned/ceiling)",
            "refusals",
            title="capacity gates",
        )
        for view in views:
            queued = f"queued at provider {view.queued_at_provider}/{view.queued_learned:g}"
            queued += f" (ceiling {view.queued_ceiling}, {view.account} account)"
            if not view.models:
                t.add_row(view.route, "-", "-", "-", "-", "no job has asked yet" + f"; {queued}")
            for m in view.models:
                refused = ", ".join(f"{c} {n}" for c, n in m.refusals.items()) or "0"
                t.add_row(
                    view.route,
                    m.model_id,
                    f"{m.in_flight}/{m.ceiling}",
                    str(m.waiting),
                    f"{m.creates_last_minute} ({m.rpm_learned:g}/{m.rpm_ceiling})",
                    f"{refused}; {queued}",
                )
        _out().table(t)

    asyncio.run(go())


health_app = typer.Typer(
    help="Per-model circuit breakers: show, trip, reset.",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(health_app, name="health")


@health_app.callback()
def health(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show every model's breaker: state, window, when it changed."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings()

    async def go() -> None:
        states = await breaker_states(await _client(), settings)
        if as_json:
            _out().json({a: (b.model_dump(mode="json") if b else None) for a, b in states.items()})
            return
        t = table(
            "model",
            "state",
            "failures/window",
            "consecutive",
            "changed",
            "last error",
            title="model breakers",
        )
        for alias, b in states.items():
            if b is None:
                t.add_row(alias, "closed", "0/0", "0", "never used", "-")
                continue
            t.add_row(
                alias,
                b.state.value,
                f"{b.failures}/{len(b.window)}",
                str(b.consecutive_failures),
                b.changed_at.isoformat() if b.changed_at else "-",
                b.last_error or "-",
            )
        _out().table(t)

    asyncio.run(go())


def _force(model: str, state: str) -> None:
    settings = _settings()
    if model not in settings.models:
        raise BadArgument(f"unknown model {model!r}; configured: {', '.join(settings.models)}")

    async def go() -> None:
        b = await force_breaker(await _client(), settings, model, state)
        _out().result(f"breaker {model}: {b.state.value}")

    asyncio.run(go())


@health_app.command()
def trip(model: str) -> None:
    """Force a model's breaker open: new jobs go to its fallback until `reset`."""
    _force(model, "open")


@health_app.command()
def reset(model: str) -> None:
    """Close a model's breaker and clear its window."""
    _force(model, "closed")


# ---- entry -------------------------------------------------------------------------------


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure a user can act on is one line on stderr."""
    current = new_session()
    current.argv = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    try:
        code = command.main(
            args=current.argv,
            prog_name="starter.py",
            standalone_mode=False,
        )
    except (KeyboardInterrupt, Abort):
        current.out.info("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        known = failure(exc, current)
        if known is None:
            if os.environ.get(DEBUG_ENV):
                traceback.print_exc()
            current.out.error(
                f"internal error: {type(exc).__name__}: {exc} (a bug: set {DEBUG_ENV}=1 for "
                "the traceback, and report it)"
            )
            return EXIT_BUG
        code, message = known
        for line in message.splitlines():
            current.out.error(line)
        return code
    return code if isinstance(code, int) else 0


def main() -> None:
    configure_logging(level="warning")  # a library's warning is a diagnostic: stderr
    code = run()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: the SDK's native runtime threads have been seen to abort
    # with "PyGILState_Release" during finalisation, turning a clean exit into a crash code.
    os._exit(code)


if __name__ == "__main__":
    main()
