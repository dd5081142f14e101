"""The chaos scenarios, as data: jobs, provider fault rules, process disruptions.

A scenario says what to do, never how: the runner (`chaos.runner`) starts its jobs at its pace,
installs its emulator fault phases, plays its disruptions (`chaos.disruptions`) alongside, then
checks every invariant (`chaos.invariants`). The full plan is `make chaos`; the smoke plan is
the same scenarios with a handful of jobs, run by `tests/chaos` inside `make test`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.stack import EmulatorSpec
from chaos.deployment import Deployment

Rule = dict[str, Any]


@dataclass(frozen=True)
class FaultPhase:
    """From `at` seconds after the first start, the emulator's fault set is `rules`."""

    at: float
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class WorkerKills:
    """SIGKILL the worker `count` times, `min_gap`-`max_gap` s apart (random), restarting it
    each time. Every `ledger_every`-th kill first holds the ledger's write lock for
    `ledger_hold` s so record_cost activities are mid-write when the kill lands."""

    count: int
    min_gap: float
    max_gap: float
    first_after: float = 2.0
    ledger_every: int = 4
    ledger_hold: float = 2.5


@dataclass(frozen=True)
class TemporalRestarts:
    """Stop the dev server at each of `at` (s after the first start), start it again on the
    same SQLite file and port after `down` s."""

    at: tuple[float, ...]
    down: float


@dataclass(frozen=True)
class WebhookOutage:
    """Stop the webhook receiver at `at` for `down` s (callbacks fail; polls must repair)."""

    at: float
    down: float


@dataclass(frozen=True)
class NetworkCuts:
    """Reset every connection on the worker->provider path `count` times, `every` s apart
    from `first_after`, refusing new connections for `down` s each time."""

    count: int
    every: float
    down: float
    first_after: float = 2.0


@dataclass(frozen=True)
class PostgresRestarts:
    """Stop the Postgres ledger at each of `at` (s after the first start), start it again on
    the same data directory and port after `down` s (workers reconnect by themselves)."""

    at: tuple[float, ...]
    down: float


@dataclass(frozen=True)
class Cancels:
    """Cancel (Temporal's own cancel, as `starter.py cancel` does) each job with probability
    `fraction` once it is seen `running`, watching for `within` s."""

    fraction: float
    within: float = 120.0


Disruption = (
    WorkerKills | TemporalRestarts | WebhookOutage | NetworkCuts | PostgresRestarts | Cancels
)
Kind = Literal["process", "provider", "process+provider"]


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    kind: Kind
    jobs: int
    start_rate: float
    """Jobs started per second (paced, so faults meet jobs in every phase)."""
    faults: tuple[FaultPhase, ...] = ()
    disruptions: tuple[Disruption, ...] = ()
    last_frame_every: int = 3
    """Every n-th job asks for the last frame too (0 = none)."""
    provider: EmulatorSpec = field(
        default_factory=lambda: EmulatorSpec(queue_seconds=1.0, run_seconds=2.0, jitter=0.5)
    )
    deployment: Deployment = field(default_factory=Deployment)
    reruns: float = 0.0
    """Once every job has closed, this fraction of them is started again under the same job
    ID (`generate --rerun`), and the run waits for those too."""
    note: str = ""
    worker_env: tuple[tuple[str, str], ...] = ()
    """Settings of this scenario's worker on top of the runner's (e.g. the account class)."""
    kill_phases: tuple[str, ...] = ("submit", "wait", "copy", "ledger")
    """Where this scenario's worker kills must land (the report says whether they did)."""

    def smaller(self, jobs: int, **changes: Any) -> Scenario:
        rate = min(self.start_rate, max(1.0, jobs / 4))
        return dataclasses.replace(self, jobs=jobs, start_rate=rate, **changes)


# ---- provider storms: rules in the emulator's own format (emulator/README.md) ----------------

AMBIGUOUS_20: tuple[Rule, ...] = (
    {"kind": "create_ambiguous", "mode": "reset", "probability": 0.16, "name": "amb reset"},
    {
        "kind": "create_ambiguous",
        "mode": "delay",
        "delay_seconds": 15,
        "probability": 0.05,
        "name": "amb delay",
    },
)
"""About 20% of creates ambiguous (0.16 + 0.84 x 0.05): the task is made, then the connection
is reset, or the answer comes after the worker's 10 s create timeout."""

CREATE_STORM = (
    FaultPhase(
        0,
        (
            {"kind": "create_5xx", "probability": 0.3, "name": "5xx 30%"},
            *AMBIGUOUS_20,
        ),
    ),
    FaultPhase(
        6,
        (
            {"kind": "create_429", "retry_after": 2, "max_hits": 12, "name": "429 burst"},
            {"kind": "create_5xx", "probability": 0.3, "name": "5xx 30%"},
            *AMBIGUOUS_20,
        ),
    ),
    FaultPhase(
        10,
        (
            {"kind": "create_5xx", "probability": 0.3, "name": "5xx 30%"},
            *AMBIGUOUS_20,
            {"kind": "get_5xx", "probability": 0.1, "name": "get 5xx 10%"},
        ),
    ),
    FaultPhase(
        18,
        (
            {"kind": "create_429", "retry_after": 3, "max_hits": 12, "name": "429 burst"},
            {"kind": "create_5xx", "probability": 0.3, "name": "5xx 30%"},
            *AMBIGUOUS_20,
            {"kind": "get_5xx", "probability": 0.1, "name": "get 5xx 10%"},
        ),
    ),
    FaultPhase(
        22,
        (
            {"kind": "create_5xx", "probability": 0.3, "name": "5xx 30%"},
            *AMBIGUOUS_20,
            {"kind": "get_5xx", "probability": 0.1, "name": "get 5xx 10%"},
        ),
    ),
)

CALLBACK_STORM = (
    FaultPhase(
        0,
        (
            {"kind": "callback_drop", "probability": 0.25},
            {"kind": "callback_duplicate", "count": 3, "probability": 0.3},
            {"kind": "callback_reorder", "probability": 0.3},
            {"kind": "callback_delay", "seconds": 4, "probability": 0.2},
        ),
    ),
)

DOWNLOAD_STORM = (
    FaultPhase(
        0,
        (
            {"kind": "url_expires_early", "ttl_seconds": 2, "probability": 0.25},
            {"kind": "slow_download", "bytes_per_second": 250_000, "probability": 0.3},
            {"kind": "truncated_download", "fraction": 0.4, "probability": 0.3},
        ),
    ),
)

EVERY_STORM: tuple[Rule, ...] = (
    {"kind": "create_5xx", "probability": 0.3},
    *AMBIGUOUS_20,
    {"kind": "get_5xx", "probability": 0.1},
    {"kind": "callback_drop", "probability": 0.2},
    {"kind": "callback_duplicate", "count": 2, "probability": 0.2},
    {"kind": "callback_reorder", "probability": 0.2},
    {"kind": "slow_download", "bytes_per_second": 300_000, "probability": 0.2},
    {"kind": "truncated_download", "fraction": 0.4, "probability": 0.2},
    {"kind": "url_expires_early", "ttl_seconds": 2, "probability": 0.1},
)
EVERYTHING = (
    FaultPhase(0, EVERY_STORM),
    FaultPhase(
        15,
        (
            {"kind": "create_429", "retry_after": 2, "max_hits": 10, "name": "429 burst"},
            *EVERY_STORM,
        ),
    ),
)
"""Every provider storm at once, at slightly lower rates where they would starve the run."""


def _slow_create(probability: float) -> dict[str, Any]:
    """Creates answered after 2 s: well inside the worker's create timeout, so not ambiguous
    unless a kill lands in them (counted as `provider:create_ambiguous` hits, delay mode)."""
    return {
        "kind": "create_ambiguous",
        "mode": "delay",
        "delay_seconds": 2,
        "probability": probability,
        "name": "slow create (answered within the 10 s create timeout)",
    }


SLOW_CREATES_AND_COPIES = (
    FaultPhase(
        0,
        (
            _slow_create(0.3),
            {"kind": "slow_download", "bytes_per_second": 300_000, "probability": 0.3},
        ),
    ),
)
"""In the worker-kill scenario: some creates take 2 s (the emulator's delayed answer, well
inside the worker's create timeout, so not ambiguous unless a kill lands in them) and some
copies ~2 s, so kills also land mid-submit and mid-copy. A create is otherwise ~50 ms."""

PROVIDER_BIG_VIDEOS = EmulatorSpec(
    queue_seconds=1.0, run_seconds=2.0, jitter=0.5, min_video_bytes=600_000
)

DEPLOYED = Deployment(workers=2, storage="s3", ledger="postgres")
"""What users run: two workers, S3 and the Postgres ledger."""
PROVIDER_MULTIPART_VIDEOS = EmulatorSpec(
    queue_seconds=1.0, run_seconds=2.0, jitter=0.5, min_video_bytes=17 * 1024 * 1024
)
"""17 MiB videos: three S3 parts (8 + 8 + 1 MiB), so a kill can land mid-multipart-upload."""
SLOW_MULTIPART_COPIES = (
    FaultPhase(
        0,
        (
            _slow_create(0.3),
            {"kind": "slow_download", "bytes_per_second": 4_000_000, "probability": 0.6},
        ),
    ),
)
"""Most copies take about 4 s, so kills land mid-upload (parts sent, the upload open)."""
GET_OUTAGE = (
    FaultPhase(3, ({"kind": "get_5xx", "name": "GET outage"},)),
    FaultPhase(183, ()),
)
"""Every GET answers 500 for 3 minutes (the job's GET retries give up after about 2)."""
FILE_HOST_OUTAGE = (
    FaultPhase(0, ({"kind": "truncated_download", "fraction": 0.05, "name": "file host cuts"},)),
    FaultPhase(40, ()),
)
"""The provider's file host cuts every download for 40 s; the URLs stay valid for 24 h."""
POLLING_AMBIGUOUS = (
    FaultPhase(
        0,
        (
            {"kind": "create_ambiguous", "mode": "reset", "probability": 0.25, "name": "amb"},
            {"kind": "create_drop", "probability": 0.1, "name": "dropped create (no task)"},
        ),
    ),
)
PAID_WORK_NOTE = (
    "A paid-work scenario (issue 17): its invariants hold once the job hands its provider "
    "task to a task follower and records runs and claims (the job workflow's wiring)."
)

SLOW_CREATES = (
    FaultPhase(
        0,
        (_slow_create(0.5),),
    ),
)
"""Half the creates take 2 s (well inside the create timeout), so kills also land while a job
holds a slot it has not yet turned into a provider task."""

CAPACITY_PROVIDER = EmulatorSpec(
    queue_seconds=0.3, run_seconds=2.7, jitter=0.3, unlimited=False, account="individual"
)
"""The published individual limits (3 running per model, 180 RPM, 120 queued): a burst of
60 jobs keeps 5 holding slots (3 running, 2 queued at the provider) and the rest waiting."""

FULL: tuple[Scenario, ...] = (
    Scenario(
        key="worker-kills",
        title="Worker SIGKILLed at random moments, restarted each time (two workers, S3, Postgres)",
        kind="process",
        jobs=120,
        start_rate=1.0,
        faults=SLOW_CREATES_AND_COPIES,
        disruptions=(WorkerKills(count=16, min_gap=4.0, max_gap=9.0),),
        provider=PROVIDER_BIG_VIDEOS,
        deployment=DEPLOYED,
        note="30% of creates are answered after 2 s and 30% of copies slowed to ~2 s so kills "
        "also land mid-submit and mid-copy (the creates count as `provider:create_ambiguous` "
        "hits, delay mode); every 4th kill holds the ledger's write lock first so it lands "
        "mid-write.",
    ),
    Scenario(
        key="capacity-kills",
        title="Worker SIGKILLed while jobs hold capacity slots and wait for them",
        kind="process",
        jobs=60,
        start_rate=20.0,
        faults=SLOW_CREATES,
        disruptions=(
            WorkerKills(count=8, min_gap=4.0, max_gap=8.0, first_after=3.0, ledger_every=0),
        ),
        last_frame_every=0,
        provider=CAPACITY_PROVIDER,
        worker_env=(("SEEDANCE_ROUTES__BYTEPLUS__ACCOUNT", "individual"),),
        kill_phases=("capacity", "submit", "wait"),
        note="A burst of 60 jobs on the published individual limits (3 running per model): at "
        "every kill some jobs hold a slot (submitting, queued or running at the provider) and "
        "the rest wait at the gate (`waiting_for_capacity`); half the creates are answered after "
        "2 s (`provider:create_ambiguous` hits, delay mode) so kills also land mid-create. "
        "Afterwards the gate's `state` must hold no slot without a live provider task and no "
        "closed job in its queue.",
    ),
    Scenario(
        key="temporal-restart",
        title="Temporal dev server stopped and restarted (same SQLite file and port)",
        kind="process",
        jobs=40,
        start_rate=1.5,
        disruptions=(TemporalRestarts(at=(8.0, 22.0), down=4.0),),
    ),
    Scenario(
        key="webhook-outage",
        title="Webhook receiver down for a while",
        kind="process",
        jobs=40,
        start_rate=1.5,
        disruptions=(WebhookOutage(at=5.0, down=15.0),),
    ),
    Scenario(
        key="network-resets",
        title="Provider network path reset (RST every connection, refuse new ones)",
        kind="process",
        jobs=40,
        start_rate=1.5,
        disruptions=(NetworkCuts(count=8, every=4.0, down=1.5),),
    ),
    Scenario(
        key="create-storm",
        title="Creates: 30% 5xx, 20% ambiguous, 429 bursts with Retry-After; GET 5xx",
        kind="provider",
        jobs=60,
        start_rate=2.0,
        faults=CREATE_STORM,
    ),
    Scenario(
        key="callback-storm",
        title="Callbacks dropped, duplicated, reordered and delayed",
        kind="provider",
        jobs=60,
        start_rate=2.0,
        faults=CALLBACK_STORM,
    ),
    Scenario(
        key="download-storm",
        title="Output URLs expiring early, slow and truncated downloads",
        kind="provider",
        jobs=60,
        start_rate=2.0,
        faults=DOWNLOAD_STORM,
        provider=PROVIDER_BIG_VIDEOS,
    ),
    Scenario(
        key="everything",
        title="All at once: kills, a Temporal restart, a webhook outage, network cuts and "
        "every provider storm",
        kind="process+provider",
        jobs=80,
        start_rate=1.0,
        faults=EVERYTHING,
        disruptions=(
            WorkerKills(count=6, min_gap=6.0, max_gap=12.0, first_after=5.0, ledger_every=3),
            TemporalRestarts(at=(35.0,), down=4.0),
            WebhookOutage(at=50.0, down=12.0),
            NetworkCuts(count=6, every=11.0, down=1.5, first_after=8.0),
        ),
        provider=PROVIDER_BIG_VIDEOS,
    ),
    Scenario(
        key="deployment",
        title="Two workers on S3 and the Postgres ledger: SIGKILLs of either worker (mid-copy "
        "of 17 MiB multipart uploads too), a Temporal restart, a Postgres restart",
        kind="process",
        jobs=60,
        start_rate=1.0,
        faults=SLOW_MULTIPART_COPIES,
        disruptions=(
            WorkerKills(count=10, min_gap=4.0, max_gap=9.0, ledger_every=4),
            TemporalRestarts(at=(30.0,), down=4.0),
            PostgresRestarts(at=(45.0,), down=5.0),
        ),
        provider=PROVIDER_MULTIPART_VIDEOS,
        deployment=DEPLOYED,
        note="Kills pick one of the two workers at random; every 4th holds the ledger's table "
        "lock first so it lands mid-write. The bucket is checked for multipart uploads left "
        "open by kills mid-copy.",
    ),
    Scenario(
        key="cancel-running",
        title="Jobs cancelled while their provider task runs (the task still succeeds and bills)",
        kind="process",
        jobs=30,
        start_rate=1.5,
        disruptions=(Cancels(fraction=0.6),),
        provider=EmulatorSpec(queue_seconds=0.5, run_seconds=6.0, jitter=0.3),
        deployment=DEPLOYED,
        note=PAID_WORK_NOTE,
    ),
    Scenario(
        key="rerun",
        title="`generate --rerun` of finished jobs under the same job IDs",
        kind="process",
        jobs=20,
        start_rate=2.0,
        reruns=1.0,
        deployment=DEPLOYED,
        note=PAID_WORK_NOTE,
    ),
    Scenario(
        key="get-outage",
        title="The provider's GET answers 500 for 3 minutes while tasks run and succeed",
        kind="provider",
        jobs=30,
        start_rate=2.0,
        faults=GET_OUTAGE,
        deployment=DEPLOYED,
        note=PAID_WORK_NOTE,
    ),
    Scenario(
        key="file-host-outage",
        title="The provider's file host cuts every download for 40 s (URLs valid 24 h)",
        kind="provider",
        jobs=30,
        start_rate=2.0,
        faults=FILE_HOST_OUTAGE,
        deployment=DEPLOYED,
        note=PAID_WORK_NOTE,
    ),
    Scenario(
        key="polling-ambiguous",
        title="Polling only (no callbacks): ambiguous and dropped creates overlapping",
        kind="provider",
        jobs=40,
        start_rate=2.0,
        faults=POLLING_AMBIGUOUS,
        deployment=Deployment(workers=2, storage="s3", ledger="postgres", callbacks=False),
        note=PAID_WORK_NOTE,
    ),
)


def _smoke(scenario: Scenario) -> Scenario:
    """A handful of jobs, disruptions shrunk to match (same code paths)."""
    small: list[Disruption] = []
    for d in scenario.disruptions:
        if isinstance(d, WorkerKills):
            small.append(dataclasses.replace(d, count=2, min_gap=2.0, max_gap=3.0, ledger_every=2))
        elif isinstance(d, TemporalRestarts):
            small.append(dataclasses.replace(d, at=(3.0,), down=2.0))
        elif isinstance(d, WebhookOutage):
            small.append(dataclasses.replace(d, at=1.0, down=5.0))
        elif isinstance(d, NetworkCuts):
            small.append(dataclasses.replace(d, count=2, every=2.0, down=1.0))
        elif isinstance(d, PostgresRestarts):
            small.append(dataclasses.replace(d, at=(6.0,), down=3.0))
        elif isinstance(d, Cancels):
            small.append(d)
    phases = _first_create_refused(
        tuple(dataclasses.replace(p, at=p.at / 4) for p in scenario.faults)
    )
    return scenario.smaller(6, disruptions=tuple(small), faults=phases)


def _first_create_refused(phases: tuple[FaultPhase, ...]) -> tuple[FaultPhase, ...]:
    """A first phase that refuses creates by chance also refuses its first create for certain.

    Six creates cannot count on a 30 % chance: no 5xx in six is 0.7^6, 12 %, and a loaded box
    can start every create after the smoke's short 429 burst, so one smoke run in several
    injected no refused create at all and its scenario checked nothing of the kind."""
    if not phases:
        return phases
    first = phases[0]
    chance = [r for r in first.rules if r["kind"] == "create_5xx" and r.get("probability", 1) < 1]
    if not chance:
        return phases
    certain = {**chance[0], "probability": 1.0, "max_hits": 1, "name": "first create 5xx"}
    return (dataclasses.replace(first, rules=(certain, *first.rules)), *phases[1:])


SMOKE: tuple[Scenario, ...] = tuple(_smoke(s) for s in FULL)
PLANS = {"full": FULL, "smoke": SMOKE}


def _rule_text(rule: Rule) -> str:
    params = {k: v for k, v in rule.items() if k not in ("kind", "name", "match")}
    text = rule["kind"] + (
        f" ({', '.join(f'{k}={v}' for k, v in params.items())})" if params else ""
    )
    return f"{rule['name']}: {text}" if rule.get("name") else text


def injections(scenario: Scenario) -> list[str]:
    """What the scenario injects, in words, for the report: fault phases and disruptions."""
    out: list[str] = []
    for phase in scenario.faults:
        rules = "; ".join(_rule_text(r) for r in phase.rules) or "no faults (cleared)"
        out.append(f"from t+{phase.at:g}s, provider faults: {rules}")
    for d in scenario.disruptions:
        out.append(_disruption_text(d))
    if scenario.reruns:
        out.append(f"after every job closed, {scenario.reruns:.0%} of them rerun (same job ID)")
    return out


def _disruption_text(d: Disruption) -> str:
    if isinstance(d, WorkerKills):
        return (
            f"{d.count} worker SIGKILLs {d.min_gap:g}-{d.max_gap:g}s apart from "
            f"t+{d.first_after:g}s (one in {d.ledger_every} with the ledger locked)"
        )
    if isinstance(d, TemporalRestarts):
        return f"Temporal stopped at t+{', '.join(f'{a:g}' for a in d.at)}s for {d.down:g}s"
    if isinstance(d, PostgresRestarts):
        return f"Postgres stopped at t+{', '.join(f'{a:g}' for a in d.at)}s for {d.down:g}s"
    if isinstance(d, WebhookOutage):
        return f"webhook receiver down at t+{d.at:g}s for {d.down:g}s"
    if isinstance(d, NetworkCuts):
        return f"{d.count} network cuts every {d.every:g}s, {d.down:g}s each"
    return f"{d.fraction:.0%} of jobs cancelled while their task runs"
