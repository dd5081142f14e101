"""`starter.py doctor --live [--paid]`: a first-day check of one route against the real
provider (or the emulator), with a verdict per check and a report file the user keeps.

`--live` makes only calls that cost nothing: the key and the route through a one-item list,
each configured model's activation through a create the provider must refuse (an empty
`content`, which no provider accepts: a refused create makes no task and bills nothing), and
the callback receiver's reachability when callbacks are on. What a free call cannot tell is
reported as `unchecked`, with how to find out.

`--paid` adds one real job through the running pipeline (4 s, 480p, Mini: about $0.14 on
BytePlus) and reports what it saw against each emulator assumption that matters: the output
host is allowed, the billed tokens match the estimate (24·d+1 frames), a callback arrived, a
`Retry-After` came with any 429, and how long the output URL lives.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import httpx
from temporalio.client import Client

from seedance_pipeline.adapters.provider_client import (
    ProviderClient,
    ProviderError,
    ProviderHTTPError,
    ProviderNotReached,
)
from seedance_pipeline.adapters.public_hosts import HostUnresolvable, addresses
from seedance_pipeline.clients.jobs import UnknownJob, job_status, start_job
from seedance_pipeline.clients.temporal_client import TemporalUnavailable
from seedance_pipeline.core.addresses import public
from seedance_pipeline.core.models import GenerationRequest, JobRecord, JobState
from seedance_pipeline.core.pricing import Estimate, estimate
from seedance_pipeline.core.request_body import effective_ratio, effective_resolution
from seedance_pipeline.core.settings import RouteSettings, Settings

Verdict = Literal["ok", "fail", "unchecked", "info"]
EXIT_OK, EXIT_FAILED, EXIT_NO_KEY, EXIT_NO_TEMPORAL = 0, 1, 2, 3
PAID_PROMPT = "doctor --paid: a paper boat drifting on a calm pond, morning light"
PAID_WAIT_SECONDS = 1800.0
EMULATOR_URL_TTL = 86400
"""What the emulator assumes an output URL lives (reference section 0, C2)."""
_TERMINAL = {JobState.SUCCEEDED, JobState.FAILED, JobState.REJECTED, JobState.CANCELLED}


class MissingKey(Exception):
    """The route's key variable is not set: nothing can be checked."""

    def __init__(self, route: str, variable: str) -> None:
        self.variable = variable
        super().__init__(
            f"no API key for route {route!r}: set {variable} (the route's api_key_env) "
            "and run again"
        )


@dataclass(frozen=True)
class LiveCheck:
    name: str
    verdict: Verdict
    detail: str
    fix: str = ""


@dataclass
class LiveReport:
    route: str
    base_url: str
    started_at: str
    paid: bool
    checks: list[LiveCheck] = field(default_factory=list)
    job: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return any(c.verdict == "fail" for c in self.checks)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False)


# ---- free checks ---------------------------------------------------------------------------


async def free_checks(
    settings: Settings, route_name: str, http: httpx.AsyncClient
) -> list[LiveCheck]:
    """Every check that costs nothing, in the order a user would fix them."""
    route = settings.route(route_name)
    if route.api_key() is None:
        raise MissingKey(route_name, route.api_key_env)
    provider = ProviderClient(http)
    checks = [await _auth_check(provider, route, route_name)]
    if checks[0].verdict == "ok":
        checks += await _activation_checks(provider, settings, route, route_name)
    checks.append(await _webhook_check(settings, http))
    checks.append(
        LiveCheck(
            "account class",
            "unchecked",
            f"configured as {route.account!r} (routes.{route_name}.account); no free call tells "
            "the class",
            "if creates meet ModelAccountRpmRateLimitExceeded below 600 a minute, or a model "
            'runs only 3 tasks at once, set account = "individual"',
        )
    )
    checks.append(
        LiveCheck(
            "output hosts",
            "unchecked",
            f"allowed: {', '.join(route.output_hosts)}; only a real output URL can confirm them",
            "run with --paid to see one",
        )
    )
    checks.append(
        LiveCheck(
            "retention",
            "unchecked",
            f"assumed {route.retention_hours:g} h (routes.{route_name}.retention_hours); the "
            "provider's docs disagree (24 h / 7 days) and no free call tells",
            "GET a task older than 24 h: a 404 confirms 24 h",
        )
    )
    return checks


async def _auth_check(provider: ProviderClient, route: RouteSettings, name: str) -> LiveCheck:
    try:
        total, _ = await provider.list(route, name, page_size=1)
    except ProviderNotReached as exc:
        return LiveCheck(
            "key and route",
            "fail",
            f"{route.base_url}: {exc}",
            f"check routes.{name}.base_url and this machine's network",
        )
    except ProviderHTTPError as exc:
        if exc.status in (401, 403):
            return LiveCheck(
                "key and route",
                "fail",
                f"the provider refused the key in {route.api_key_env}: {exc.code}",
                "use a key of this region (a BytePlus key does not work on Volcengine) and "
                "check that it is active and the account is not overdue",
            )
        return LiveCheck("key and route", "fail", f"list answered {exc}", "")
    except ProviderError as exc:
        return LiveCheck("key and route", "fail", f"list failed: {exc}", "")
    return LiveCheck(
        "key and route",
        "ok",
        f"{route.base_url} accepted the key in {route.api_key_env} ({total} task(s) listed)",
    )


async def _activation_checks(
    provider: ProviderClient, settings: Settings, route: RouteSettings, name: str
) -> list[LiveCheck]:
    checks = []
    for alias, spec in settings.models.items():
        model_id = spec.ids.get(name)
        if model_id:
            checks.append(await _activation(provider, route, name, alias, model_id))
    return checks


async def _activation(
    provider: ProviderClient, route: RouteSettings, route_name: str, alias: str, model_id: str
) -> LiveCheck:
    """A create with an empty `content`: refused by validation (free), unless the provider
    checks the model first, which answers the question."""
    label = f"model {alias} ({model_id})"
    try:
        task_id = await provider.create(route, route_name, {"model": model_id, "content": []})
    except ProviderHTTPError as exc:
        if exc.code == "ModelNotOpen" or (exc.status == 403 and exc.code == "AccessDenied"):
            return LiveCheck(
                label,
                "fail",
                f"not activated for this account ({exc.code})",
                "activate it in the console (Model activation); buying a plan does not",
            )
        if exc.status == 404:
            return LiveCheck(
                label,
                "fail",
                f"the provider does not know this model ID ({exc.code})",
                f"the date suffix may have rotated: update models.{alias}.ids.{route_name}",
            )
        if exc.status == 400:
            return LiveCheck(
                label,
                "unchecked",
                f"the provider refused the empty probe as invalid ({exc.code}) before any "
                "activation check, so activation is not known",
                "--paid runs one job (on mini); ModelNotOpen there means not activated",
            )
        return LiveCheck(label, "unchecked", f"probe answered {exc}", "")
    except ProviderError as exc:
        return LiveCheck(label, "unchecked", f"probe failed: {exc}", "")
    # No provider should accept an empty content; if one did, cancel it while it is queued.
    try:
        await provider.delete(route, route_name, task_id)
        after = "deleted while queued (not billed)"
    except ProviderError as exc:
        after = f"could not be deleted: {exc}"
    return LiveCheck(
        label,
        "fail",
        f"the provider accepted an empty create as task {task_id}; it was {after}",
        "report this: the free probe is not free on this provider",
    )


async def _webhook_check(settings: Settings, http: httpx.AsyncClient) -> LiveCheck:
    callbacks = settings.callbacks
    if not callbacks.enabled:
        return LiveCheck(
            "callbacks",
            "info",
            "off (callbacks.base_url is empty): jobs learn their outcome by polling",
        )
    parts = urlsplit(callbacks.base_url)
    host = parts.hostname or ""
    problems: list[str] = []
    if callbacks.secret() is None:
        problems.append(f"{callbacks.secret_env} is not set (the worker sends no callback URL)")
    try:
        found = await addresses(host)
    except HostUnresolvable:
        found = []
        problems.append(f"{host!r} does not resolve")
    private = [a for a in found if not public(a)]
    if private:
        problems.append(
            f"{host} resolves to {', '.join(private)}, not a public address: the provider "
            "cannot reach it (receivers behind NAT get nothing, reference C13)"
        )
    try:
        health = await http.get(callbacks.base_url.rstrip("/") + "/healthz", timeout=10)
        reached = f"/healthz answered {health.status_code} from here"
        if health.status_code != 200:
            problems.append(reached)
    except httpx.HTTPError as exc:
        reached = f"/healthz unreachable from here ({type(exc).__name__})"
        problems.append(reached)
    if problems:
        return LiveCheck(
            "callbacks",
            "fail",
            "; ".join(problems),
            "publish the receiver on a public https URL (callbacks.base_url), or turn "
            "callbacks off and rely on polling",
        )
    return LiveCheck(
        "callbacks",
        "unchecked",
        f"{callbacks.base_url} is public and {reached}; whether the provider's callbacks "
        "arrive cannot be proven for free",
        "run with --paid: it reports whether the job's callback arrived",
    )


# ---- the paid job --------------------------------------------------------------------------


def paid_request(route_name: str) -> GenerationRequest:
    """The cheapest real job: Mini, 4 s, 480p, silent."""
    return GenerationRequest(
        prompt=PAID_PROMPT,
        model="mini",
        route=route_name,
        duration=4,
        resolution="480p",
        generate_audio=False,
    )


def paid_estimate(settings: Settings, route_name: str) -> Estimate:
    request = paid_request(route_name)
    spec = settings.model("mini")
    return estimate(
        request,
        spec,
        spec.prices.get(route_name),
        settings.route(route_name).currency,
        resolution=effective_resolution(request, spec),
        ratio=effective_ratio(request, spec),
    )


async def paid_checks(
    settings: Settings,
    route_name: str,
    client: Client,
    http: httpx.AsyncClient,
    *,
    wait_seconds: float = PAID_WAIT_SECONDS,
    job_id: str | None = None,
) -> tuple[list[LiveCheck], dict[str, Any]]:
    """Run the paid job through the pipeline (a worker must be running) and check what it saw."""
    guess = paid_estimate(settings, route_name)
    job_id = job_id or f"doctor-paid-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    await start_job(client, settings, paid_request(route_name), job_id=job_id)
    record = await _wait(client, job_id, wait_seconds)
    job: dict[str, Any] = {
        "job_id": job_id,
        "estimate": asdict(guess),
        "record": record.summary() if record else None,
    }
    if record is None or record.state not in _TERMINAL:
        state = record.state.value if record else "not started"
        return [
            LiveCheck(
                "paid job",
                "fail",
                f"job {job_id} still {state} after {wait_seconds:.0f} s",
                "is a worker running with these settings (`python worker.py`)? "
                f"follow it with `starter.py status {job_id}`",
            )
        ], job
    checks = [_outcome_check(record, guess)]
    checks.append(_host_check(settings, route_name, record))
    checks.append(_tokens_check(record, guess))
    checks.append(_callback_check(settings, record))
    checks.append(_retry_after_check(record))
    checks.append(_expiry_check(record))
    task = await _raw_task(settings, route_name, http, record)
    if task is not None:
        job["provider_task"] = task
    return checks, job


async def _wait(client: Client, job_id: str, seconds: float) -> JobRecord | None:
    deadline = time.monotonic() + seconds
    record: JobRecord | None = None
    while time.monotonic() < deadline:
        try:
            record = await job_status(client, job_id)
        except UnknownJob:
            record = None
        if record is not None and record.state in _TERMINAL:
            return record
        await asyncio.sleep(1.0)
    return record


def _outcome_check(record: JobRecord, guess: Estimate) -> LiveCheck:
    outcome = record.outcome.value if record.outcome else "none"
    if record.outcome and record.outcome.value == "succeeded":
        return LiveCheck(
            "paid job",
            "ok",
            f"{record.job_id} succeeded: task {record.provider_task_id}, stored at "
            f"{record.video_uri}, cost {record.cost} {record.currency} "
            f"(estimate {guess.cost} {guess.currency})",
        )
    error = f" ({record.error.code}: {record.error.message})" if record.error else ""
    return LiveCheck(
        "paid job",
        "fail",
        f"{record.job_id} ended {outcome}{error}",
        f"see `starter.py status {record.job_id}`",
    )


def _host_check(settings: Settings, route_name: str, record: JobRecord) -> LiveCheck:
    route = settings.route(route_name)
    url = record.provider_video_url
    if url is None:
        refused = record.error and record.error.code == "OutputHostRefused"
        return LiveCheck(
            "output host",
            "fail" if refused else "unchecked",
            record.error.message if refused and record.error else "no output URL was seen",
            f"add the host to routes.{route_name}.output_hosts (narrowly)" if refused else "",
        )
    host = urlsplit(url).hostname or ""
    if route.allows_output_host(host):
        return LiveCheck("output host", "ok", f"{host} is allowed by routes.{route_name}")
    return LiveCheck(
        "output host",
        "fail",
        f"{host} is not in routes.{route_name}.output_hosts {list(route.output_hosts)}",
        f"add *.{'.'.join(host.split('.')[1:])} to routes.{route_name}.output_hosts",
    )


def _tokens_check(record: JobRecord, guess: Estimate) -> LiveCheck:
    billed = record.tokens
    if not billed:
        return LiveCheck("billed tokens", "unchecked", "the job was not billed")
    if billed == guess.tokens:
        return LiveCheck(
            "billed tokens",
            "ok",
            f"{billed:,} billed = the estimate on 24·d+1 frames (reference C6)",
        )
    gap = (billed - guess.tokens) / guess.tokens
    return LiveCheck(
        "billed tokens",
        "fail",
        f"{billed:,} billed, {guess.tokens:,} estimated ({gap:+.1%}): the token formula or "
        "the pixel table is off for 480p 16:9",
        "report the figures; budgets hold estimates until the bill is known",
    )


def _callback_check(settings: Settings, record: JobRecord) -> LiveCheck:
    if not settings.callbacks.enabled:
        return LiveCheck("callback received", "unchecked", "callbacks are off for this route")
    if record.callbacks_received > 0:
        return LiveCheck(
            "callback received",
            "ok",
            f"{record.callbacks_received} callback(s) reached the receiver "
            f"({record.callbacks_ignored} ignored), {record.polls} repair poll(s)",
        )
    return LiveCheck(
        "callback received",
        "fail",
        f"no callback arrived; the job finished by polling ({record.polls} poll(s))",
        "check that callbacks.base_url is reachable from the internet (not behind NAT)",
    )


def _retry_after_check(record: JobRecord) -> LiveCheck:
    limited = [a for a in record.attempts if a.error and a.error.http_status == 429]
    if not limited:
        return LiveCheck(
            "Retry-After",
            "unchecked",
            "no 429 was met, so whether the provider sends Retry-After is still unknown "
            "(the emulator sends none unless told to)",
        )
    codes = ", ".join(sorted({a.error.code for a in limited if a.error}))
    return LiveCheck(
        "Retry-After",
        "info",
        f"429 met ({codes}); the pipeline does not record the header: see the worker log",
    )


def _expiry_check(record: JobRecord) -> LiveCheck:
    url = record.provider_video_url
    if url is None:
        return LiveCheck("output URL expiry", "unchecked", "no output URL was seen")
    query = parse_qs(urlsplit(url).query)
    expires = (query.get("X-Tos-Expires") or [""])[0]
    signed = (query.get("X-Tos-Date") or [""])[0]
    if not expires.isdigit():
        return LiveCheck(
            "output URL expiry",
            "fail",
            "the URL carries no X-Tos-Expires (not the TOS shape the emulator assumes)",
            "report the URL's shape (without its signature)",
        )
    seconds = int(expires)
    detail = f"X-Tos-Expires={seconds} s from X-Tos-Date={signed or '?'}"
    if seconds == EMULATOR_URL_TTL:
        return LiveCheck("output URL expiry", "ok", detail + " (24 h, as the emulator assumes)")
    return LiveCheck(
        "output URL expiry",
        "info",
        detail + f"; the emulator assumes {EMULATOR_URL_TTL} s",
        "set the emulator's --url-ttl to match in tests",
    )


async def _raw_task(
    settings: Settings, route_name: str, http: httpx.AsyncClient, record: JobRecord
) -> dict[str, Any] | None:
    """The provider's own task object, without its signed URLs' signatures."""
    if record.provider_task_id is None:
        return None
    try:
        task = await ProviderClient(http).get(
            settings.route(route_name), route_name, record.provider_task_id
        )
    except ProviderError:
        return None
    data = task.model_dump(mode="json", exclude_none=True)
    content = data.get("content") or {}
    for key, value in list(content.items()):
        if isinstance(value, str):
            content[key] = value.split("X-Tos-Signature=")[0] + "X-Tos-Signature=..."
    return data


# ---- the command ---------------------------------------------------------------------------


Printer = Callable[[str], None]
MARKS: dict[Verdict, str] = {
    "ok": "ok        ",
    "fail": "FAIL      ",
    "unchecked": "unchecked ",
    "info": "info      ",
}


async def run(
    settings: Settings,
    route_name: str,
    *,
    paid: bool,
    client_factory: Callable[[], Any] | None = None,
    wait_seconds: float = PAID_WAIT_SECONDS,
) -> LiveReport:
    """Build the report: the free checks, then (with `paid`) the paid job's."""
    route = settings.route(route_name)
    report = LiveReport(
        route=route_name,
        base_url=route.base_url,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        paid=paid,
    )
    async with httpx.AsyncClient(timeout=30) as http:
        report.checks = await free_checks(settings, route_name, http)
        if paid:
            if client_factory is None:
                raise ValueError("--paid needs a Temporal client")
            client = await client_factory()
            checks, job = await paid_checks(
                settings, route_name, client, http, wait_seconds=wait_seconds
            )
            report.checks += checks
            report.job = job
    return report


def default_report_path(route_name: str) -> Path:
    return Path(f"doctor-live-{route_name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json")


def command(
    settings: Settings,
    *,
    route_name: str | None,
    paid: bool,
    report_path: Path | None,
    as_json: bool,
    say: Printer,
    out: Printer,
    fail: Printer,
    client_factory: Callable[[], Any] | None = None,
) -> int:
    """`doctor --live [--paid]`: print a verdict per check (`out`, stdout), notes (`say`) and
    errors (`fail`, stderr), write the report, return the exit code (0 nothing failed, 1 a check
    failed, 2 no key)."""
    name = route_name or settings.default_route
    if name not in settings.routes:
        fail(f"unknown route {name!r} (configured: {', '.join(sorted(settings.routes))})")
        return EXIT_NO_KEY
    route = settings.routes[name]
    if route.api_key() is None:  # before anything else: nothing can be checked without it
        fail(str(MissingKey(name, route.api_key_env)))
        return EXIT_NO_KEY
    if paid:
        guess = paid_estimate(settings, name)
        say(
            f"note: --paid runs one real job on {name}: mini, 4 s, 480p, about {guess.cost:.2f} "
            f"{guess.currency} ({guess.tokens:,} tokens); a worker must be running"
        )
    try:
        report = asyncio.run(run(settings, name, paid=paid, client_factory=client_factory))
    except MissingKey as exc:
        fail(str(exc))
        return EXIT_NO_KEY
    except TemporalUnavailable as exc:
        fail(f"--paid needs Temporal and a running worker: {exc}")
        return EXIT_NO_TEMPORAL
    path = report_path or default_report_path(name)
    path.write_text(report.to_json() + "\n", encoding="utf-8")
    if as_json:
        out(report.to_json())
    else:
        for check in report.checks:
            out(f"{MARKS[check.verdict]}{check.name}: {check.detail}")
            if check.fix and check.verdict in ("fail", "unchecked"):
                out(f"          fix: {check.fix}")
        say(f"note: report written to {path}")
    return EXIT_FAILED if report.failed else EXIT_OK
