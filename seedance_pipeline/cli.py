"""The CLI: start, watch and steer generation jobs. Thin over `clients/`.

Requests are validated against the model's limits before anything starts; exit codes:
0 done (and succeeded, with --wait), 1 a job did not succeed, 2 invalid request or config,
3 Temporal unreachable, 4 unknown job.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from temporalio.client import Client

from seedance_pipeline.clients.batch_file import parse_media, read_batch
from seedance_pipeline.clients.costs_cli import app as costs_app
from seedance_pipeline.clients.health import breaker_states, force_breaker
from seedance_pipeline.clients.jobs import UnknownJob, cancel_job, job_status, poke_job, start_job
from seedance_pipeline.clients.ops import (
    Refused,
    doctor,
    extend_job,
    list_jobs,
    list_query,
    regeneration,
)
from seedance_pipeline.clients.runs import RunSummary, follower_views, job_runs
from seedance_pipeline.clients.temporal_client import TemporalUnavailable, connect
from seedance_pipeline.clients.temporal_setup import ensure_search_attributes
from seedance_pipeline.core.follow import FollowerView
from seedance_pipeline.core.models import GenerationRequest, JobRecord, Reference
from seedance_pipeline.core.pricing import cost, estimate_tokens
from seedance_pipeline.core.settings import ConfigError, Settings, load_settings
from seedance_pipeline.core.validation import RequestInvalid, validate_request

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Seedance generation jobs on Temporal."
)
app.add_typer(costs_app)
console = Console(stderr=True)
EXIT_FAILED, EXIT_INVALID, EXIT_NO_TEMPORAL, EXIT_UNKNOWN = 1, 2, 3, 4
TERMINAL = {"succeeded", "failed", "rejected", "cancelled"}


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        console.print(f"[red]config error:[/] {exc}")
        raise typer.Exit(EXIT_INVALID) from None


async def _client() -> Client:
    try:
        return await connect()
    except TemporalUnavailable as exc:
        console.print(f"[red]Temporal unavailable:[/] {exc}")
        raise typer.Exit(EXIT_NO_TEMPORAL) from None


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _estimate(settings: Settings, request: GenerationRequest) -> tuple[int, float, str]:
    alias = request.model or settings.default_model
    spec = settings.model(alias)
    route = request.route or settings.default_route
    seconds = request.duration if request.duration > 0 else spec.duration_max
    tokens = estimate_tokens(
        spec.pixel_table,
        request.resolution or spec.default_resolution,
        request.ratio or spec.default_ratio,
        seconds,
    )
    price = spec.prices.get(route)
    unit = (price.standard if price else 0.0) * (
        price.flex_factor if price and request.service_tier == "flex" else 1.0
    )
    return tokens, cost(tokens, unit), settings.route(route).currency


def _print_record(record: JobRecord, as_json: bool) -> None:
    if as_json:
        print(json.dumps(record.summary(), indent=2))
        return
    s = record.summary()
    table = Table(show_header=False, box=None)
    for key in (
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
    ):
        if s.get(key) is not None:
            table.add_row(f"[bold]{key}[/]", str(s[key]))
    if record.error:
        table.add_row("[bold red]error[/]", f"{record.error.code}: {record.error.message}")
    console.print(table)
    if record.timeline:
        console.print("[bold]timeline[/]")
        for change in record.timeline:
            console.print(f"  {change.at.isoformat()}  {change.state.value} {change.note}")
    if len(record.attempts) > 1 or any(a.error for a in record.attempts):
        console.print("[bold]attempts[/]")
        for a in record.attempts:
            err = f" {a.error.code}: {a.error.message}" if a.error else ""
            console.print(
                f"  #{a.submit_no} {a.model_id} task={a.provider_task_id} status={a.status}{err}"
            )


async def _wait_for(
    client: Client, job_id: str, quiet: bool = False, on_state: Callable[[str], None] | None = None
) -> JobRecord:
    """Follow a job until its record is final (the state turns terminal after the manifest)."""
    last = None
    while True:
        record = await job_status(client, job_id)
        if on_state is not None:
            on_state(record.state.value)
        if not quiet and record.state.value != last:
            console.print(f"[cyan]{job_id}[/] {record.state.value}")
            last = record.state.value
        if record.state.value in TERMINAL:
            return record
        await asyncio.sleep(0.5)


@app.command()
def generate(
    prompt: str,
    model: Annotated[str | None, typer.Option(help="model alias (mini, fast, pro, ...)")] = None,
    duration: Annotated[int, typer.Option(help="seconds (-1: model chooses)")] = 5,
    resolution: Annotated[str | None, typer.Option()] = None,
    ratio: Annotated[str | None, typer.Option()] = None,
    image: Annotated[list[str] | None, typer.Option(help="URL[:ROLE], repeatable")] = None,
    video: Annotated[list[str] | None, typer.Option(help="reference video URL")] = None,
    audio: Annotated[list[str] | None, typer.Option(help="reference audio URL")] = None,
    last_frame: Annotated[
        bool, typer.Option("--last-frame", help="also store the last frame")
    ] = False,
    seed: Annotated[int, typer.Option()] = -1,
    route: Annotated[str | None, typer.Option()] = None,
    service_tier: Annotated[str, typer.Option()] = "default",
    job_id: Annotated[str | None, typer.Option(help="your idempotency key")] = None,
    candidate: Annotated[int, typer.Option(help="candidate index of the same prompt")] = 0,
    rerun: Annotated[bool, typer.Option(help="run again even if the job finished")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="wait for the outcome")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Start one generation job (validated first; a duplicate start returns the same job)."""
    settings = _settings()
    refs: list[Reference] = [parse_media(i, "image") for i in image or []]
    refs += [parse_media(v, "video") for v in video or []]
    refs += [parse_media(a, "audio") for a in audio or []]
    try:
        request = GenerationRequest(
            prompt=prompt,
            model=model,
            duration=duration,
            resolution=resolution,
            ratio=ratio,
            references=tuple(refs),
            return_last_frame=last_frame,
            seed=seed,
            route=route,
            service_tier=service_tier,
        )
    except ValueError as exc:
        console.print(f"[red]invalid request:[/] {exc}")
        raise typer.Exit(EXIT_INVALID) from None
    problems = validate_request(request, settings)
    if problems:
        for problem in problems:
            console.print(f"[red]invalid request:[/] {problem}")
        raise typer.Exit(EXIT_INVALID)
    tokens, estimate, currency = _estimate(settings, request)
    if not as_json:
        console.print(f"estimate: {tokens:,} tokens, about {estimate:.4f} {currency}")

    async def go() -> int:
        client = await _client()
        try:
            started = await start_job(
                client, settings, request, job_id=job_id, candidate=candidate, rerun=rerun
            )
        except RequestInvalid as exc:
            console.print(f"[red]invalid request:[/] {exc}")
            return EXIT_INVALID
        verb = "already exists" if started.existed else "started"
        if not as_json:
            console.print(f"job [bold]{started.job_id}[/] {verb}")
        if not wait:
            if as_json:
                print(
                    json.dumps(
                        {
                            "job_id": started.job_id,
                            "existed": started.existed,
                            "estimated_tokens": tokens,
                            "estimated_cost": estimate,
                            "currency": currency,
                        }
                    )
                )
            return 0
        record = await _wait_for(client, started.job_id, quiet=as_json)
        _print_record(record, as_json)
        return 0 if record.outcome and record.outcome.value == "succeeded" else EXIT_FAILED

    raise typer.Exit(_run(go()))


def _on_job(job_id: str, action: Callable[[Client], Awaitable[str | None]]) -> None:
    """Run one operation on a job; an unknown job is said plainly (exit 4)."""

    async def go() -> int:
        client = await _client()
        try:
            message = await action(client)
        except UnknownJob as exc:
            console.print(f"[red]{exc}[/]")
            return EXIT_UNKNOWN
        if message:
            console.print(message)
        return 0

    raise typer.Exit(_run(go()))


@app.command()
def status(job_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show a job: state timeline, attempts, error, URIs, cost; every earlier run of the job
    ID (reruns add, never replace) and what its task followers stored after it ended."""

    async def show(client: Client) -> None:
        record = await job_status(client, job_id)
        runs, followers = await asyncio.gather(
            job_runs(client, job_id), follower_views(client, record)
        )
        if as_json:
            summary = record.summary()
            summary["runs"] = [r.as_dict() for r in runs]
            summary["followers"] = [f.model_dump(mode="json") for f in followers]
            print(json.dumps(summary, indent=2))
            return
        _print_record(record, as_json=False)
        _print_runs(runs, followers)

    _on_job(job_id, show)


def _print_runs(runs: list[RunSummary], followers: list[FollowerView]) -> None:
    if len(runs) > 1:
        console.print(f"[bold]runs[/] ({len(runs)}, oldest first)")
        for run in runs:
            cost = f" {run.cost} {run.currency}" if run.cost is not None else ""
            console.print(
                f"  {run.run_id} {run.status.lower()} {run.outcome or ''}{cost} "
                f"video={run.video_uri or '-'} manifest={run.manifest_uri or '-'}"
            )
    for view in followers:
        done = view.result
        what = f"following (polls {view.progress.polls})"
        if done is not None:
            video = done.video.uri if done.video else "-"
            what = f"{done.outcome.value} tokens={done.tokens} video={video}"
        console.print(f"[bold]follower[/] of task {view.task_id or '?'}: {what} {view.problem}")


@app.command()
def cancel(job_id: str) -> None:
    """Cancel a job (a queued provider task is deleted at the provider)."""

    async def act(client: Client) -> str:
        await cancel_job(client, job_id)
        return f"cancellation requested for {job_id}"

    _on_job(job_id, act)


@app.command()
def poke(job_id: str) -> None:
    """Ask a job to check the provider now (for a callback you know was lost)."""

    async def act(client: Client) -> str:
        await poke_job(client, job_id)
        return f"poked {job_id}"

    _on_job(job_id, act)


def _progress_text(states: dict[str, str], outcomes: Counter[str]) -> str:
    """In-flight jobs by state, finished ones by outcome: `running=3 queued=1 | succeeded=5`."""
    live = " ".join(f"{k}={v}" for k, v in sorted(Counter(states.values()).items()))
    done = " ".join(f"{k}={v}" for k, v in sorted(outcomes.items()))
    return " | ".join(part for part in (live, done) if part) or "starting"


@app.command()
def batch(
    file: Path,
    concurrency: Annotated[int, typer.Option(help="jobs in flight at once")] = 20,
    wait: Annotated[bool, typer.Option(help="wait for every job to finish")] = True,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run a JSONL/CSV batch: validate every row first, start, follow, summarise."""
    settings = _settings()
    if not file.exists():
        console.print(f"[red]no such file:[/] {file}")
        raise typer.Exit(EXIT_INVALID)
    rows, problems = read_batch(file, settings)
    if problems:
        for problem in problems:
            console.print(f"[red]invalid:[/] {problem}")
        console.print(f"{len(problems)} problem(s); nothing was started")
        raise typer.Exit(EXIT_INVALID)
    jobs = [(row, c) for row in rows for c in range(row.candidates)]
    raise typer.Exit(_run(_run_batch(settings, jobs, concurrency, wait, as_json)))


async def _run_batch(
    settings: Settings, jobs: list[Any], concurrency: int, wait: bool, as_json: bool
) -> int:
    client = await _client()
    gate = asyncio.Semaphore(max(1, concurrency))
    records: dict[str, JobRecord] = {}
    started_ids: list[str] = []
    outcomes: Counter[str] = Counter()
    states: dict[str, str] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
    ) as progress:
        bar = progress.add_task("jobs", total=len(jobs))

        async def one(row: Any, candidate: int) -> None:
            async with gate:
                started = await start_job(
                    client, settings, row.request, job_id=row.job_id, candidate=candidate
                )
                started_ids.append(started.job_id)
                if wait:

                    def seen(state: str, job: str = started.job_id) -> None:
                        states[job] = state
                        progress.update(bar, description=_progress_text(states, outcomes))

                    record = await _wait_for(client, started.job_id, quiet=True, on_state=seen)
                    states.pop(started.job_id, None)
                    records[started.job_id] = record
                    outcomes[record.outcome.value if record.outcome else "unknown"] += 1
                progress.update(bar, advance=1, description=_progress_text(states, outcomes))

        try:
            await asyncio.gather(*(one(row, c) for row, c in jobs))
        except asyncio.CancelledError:
            console.print(
                f"interrupted: {len(started_ids)} job(s) started keep running; follow "
                "them with `starter.py status JOB_ID` or the Web UI"
            )
            raise
    if as_json:
        print(
            json.dumps(
                {
                    "jobs": [r.summary() for r in records.values()],
                    "started": started_ids,
                    "outcomes": dict(outcomes),
                },
                indent=2,
            )
        )
    else:
        table = Table(title="batch summary")
        for col in ("job", "outcome", "model", "res", "dur", "tokens", "cost", "video"):
            table.add_column(col)
        for record in records.values():
            table.add_row(
                record.job_id,
                record.outcome.value if record.outcome else "-",
                record.model_alias or "-",
                record.resolution or "-",
                str(record.duration),
                str(record.tokens or 0),
                f"{record.cost or 0:.4f} {record.currency or ''}",
                record.video_uri or (record.error.code if record.error else "-"),
            )
        Console().print(table)
    if not wait:
        return 0
    return (
        0
        if all(r.outcome and r.outcome.value == "succeeded" for r in records.values())
        else EXIT_FAILED
    )


@app.command(name="list")
def list_(
    state: Annotated[str | None, typer.Option(help="JobState, e.g. running")] = None,
    outcome: Annotated[str | None, typer.Option(help="e.g. rejected_moderation")] = None,
    model: Annotated[str | None, typer.Option(help="model alias")] = None,
    since: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    limit: Annotated[int, typer.Option()] = 200,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List jobs by state, outcome, model and start date (Temporal visibility)."""
    try:
        query = list_query(state, outcome, model, date.fromisoformat(since) if since else None)
    except ValueError as exc:
        console.print(f"[red]invalid filter:[/] {exc}")
        raise typer.Exit(EXIT_INVALID) from None

    async def go() -> int:
        rows = await list_jobs(await _client(), query, limit)
        if as_json:
            print(json.dumps(rows, indent=2))
            return 0
        table = Table(title=f"{len(rows)} job(s): {query}")
        for col in ("job", "state", "outcome", "model", "task", "cost", "error", "started"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r["job_id"],
                r["state"] or "-",
                r["outcome"] or "-",
                r["model"] or "-",
                r["provider_task_id"] or "-",
                f"{r['cost']:.4f}" if r["cost"] is not None else "-",
                r["error_code"] or "-",
                (r["started"] or "-")[:19],
            )
        Console().print(table)
        return 0

    raise typer.Exit(_run(go()))


@app.command()
def extend(job_id: str, minutes: Annotated[int, typer.Option(help="how much later")]) -> None:
    """Move a running job's deadline later (refused for finished jobs and past the maximum)."""

    async def act(client: Client) -> str:
        try:
            record = await extend_job(client, job_id, minutes)
        except Refused as exc:
            console.print(f"[red]refused:[/] {exc}")
            raise typer.Exit(EXIT_INVALID) from None
        return f"{job_id}: deadline extended, {record.deadline_extension_minutes} min in all"

    _on_job(job_id, act)


@app.command()
def regenerate(
    source: Annotated[str, typer.Argument(help="JOB_ID or a manifest URI/path")],
    model_id: Annotated[str | None, typer.Option(help="use another exact model ID")] = None,
    same_seed: Annotated[bool, typer.Option(help="pin the seed the provider used")] = False,
    wait: Annotated[bool, typer.Option("--wait")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Start a new job with exactly the stored request (prompt, references, parameters, model
    ID with its date suffix)."""
    settings = _settings()

    async def go() -> int:
        needs_temporal = not (source.endswith(".json") or source.startswith(("file:", "s3:")))
        client = await _client()
        try:
            regen = await regeneration(
                client if needs_temporal else None, settings, source, model_id, same_seed
            )
        except (UnknownJob, ValueError, OSError) as exc:
            console.print(f"[red]{exc}[/]")
            return EXIT_UNKNOWN
        for warning in regen.warnings:
            console.print(f"[yellow]warning:[/] {warning}")
        started = await start_job(client, settings, regen.request)
        console.print(
            f"regenerated {source} as job [bold]{started.job_id}[/] ({regen.request.model_id})"
        )
        if not wait:
            if as_json:
                print(json.dumps({"job_id": started.job_id, "warnings": regen.warnings}))
            return 0
        record = await _wait_for(client, started.job_id, quiet=as_json)
        _print_record(record, as_json)
        return 0 if record.outcome and record.outcome.value == "succeeded" else EXIT_FAILED

    raise typer.Exit(_run(go()))


@app.command(name="doctor")
def doctor_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check every piece the pipeline needs; each verdict comes with its fix."""
    settings = _settings()
    checks = _run(doctor(settings))
    if as_json:
        print(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        for check in checks:
            mark = "[green]ok  [/]" if check.ok else "[red]FAIL[/]"
            console.print(
                f"{mark} {check.name}: {check.detail}"
                + (f"\n      fix: {check.fix}" if not check.ok and check.fix else "")
            )
    raise typer.Exit(0 if all(c.ok for c in checks) else EXIT_FAILED)


@app.command()
def setup() -> None:
    """Register the search attributes on an existing Temporal cluster (operator service)."""

    async def go() -> int:
        added = await ensure_search_attributes(await _client())
        console.print(
            f"registered: {', '.join(added)}"
            if added
            else "every search attribute was already registered"
        )
        return 0

    raise typer.Exit(_run(go()))


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

    async def go() -> int:
        client = await _client()
        states = await breaker_states(client, settings)
        if as_json:
            print(
                json.dumps(
                    {a: (b.model_dump(mode="json") if b else None) for a, b in states.items()},
                    indent=2,
                )
            )
            return 0
        table = Table(title="model breakers")
        for col in ("model", "state", "failures/window", "consecutive", "changed", "last error"):
            table.add_column(col)
        for alias, b in states.items():
            if b is None:
                table.add_row(alias, "closed", "0/0", "0", "never used", "-")
                continue
            table.add_row(
                alias,
                b.state.value,
                f"{b.failures}/{len(b.window)}",
                str(b.consecutive_failures),
                b.changed_at.isoformat() if b.changed_at else "-",
                b.last_error or "-",
            )
        Console().print(table)
        return 0

    raise typer.Exit(_run(go()))


def _force(model: str, state: str) -> None:
    settings = _settings()

    async def go() -> int:
        client = await _client()
        try:
            b = await force_breaker(client, settings, model, state)
        except KeyError as exc:
            console.print(f"[red]{exc.args[0]}[/]")
            return EXIT_INVALID
        console.print(f"breaker {model}: {b.state.value}")
        return 0

    raise typer.Exit(_run(go()))


@health_app.command()
def trip(model: str) -> None:
    """Force a model's breaker open: new jobs go to its fallback until `reset`."""
    _force(model, "open")


@health_app.command()
def reset(model: str) -> None:
    """Close a model's breaker and clear its window."""
    _force(model, "closed")


def main() -> None:
    try:
        app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
