"""Settings: routes, models, prices, storage, ledger, callbacks, queues.

Everything that rotates or differs per deployment (model IDs with their date suffix, base URLs,
prices, the names of the variables that hold keys) comes from `config/seedance.toml` or the
environment, never from code. The module holds the models and their rules only (no file is
read here: `config.loader.load_settings` reads the TOML file and the environment), so the
starter can validate a request before anything starts and the workflow can import the models
it defines.

Secrets are not fields: a route names the environment variable that holds its key and
`RouteSettings.api_key()` reads it at the moment of use, so a dumped Settings object can never
leak a key into history, logs or manifests.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from seedance_pipeline.core.breaker import BreakerConfig
from seedance_pipeline.core.budget import RouteBudget
from seedance_pipeline.core.models import TENANT_PATTERN

MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
"""Provider model and endpoint IDs (`dreamina-seedance-2-0-260128`, `ep-2026...-abcde`)."""
SQLITE_URL_PREFIX = "sqlite:///"
POSTGRES_URL_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the entry at fault."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


AccountClass = Literal["enterprise", "individual"]
"""The provider's account classes; their published limits differ (reference section 0, C3)."""

_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def _output_host_problem(pattern: str) -> str | None:
    """Why an `output_hosts` entry is refused, or None.

    An entry is an exact host name or `*.` followed by at least three labels
    (`*.tos-ap-southeast-1.volces.com`): the copy step downloads whatever these allow, so a
    pattern as broad as `*.com` or `*.volces.com`'s parent would let a forged task object
    point the worker anywhere. Loopback hosts are allowed for emulated stacks only by being
    listed explicitly (they are never in the shipped file).
    """
    host = pattern.strip().lower()
    if host in _LOOPBACK_HOSTS:
        return None
    labels = host.split(".")
    if labels[0] == "*":
        labels = labels[1:]
        if len(labels) < 3:
            return f"{pattern!r} is broader than one provider storage domain (use *.a.b.c)"
    if "*" in host.lstrip("*") or not all(_HOST_LABEL.match(label) for label in labels):
        return f"{pattern!r} is not a host name or a *.host.name pattern"
    return None


class RouteSettings(_Frozen):
    """One provider route: where to send requests, how to authenticate, what currency it bills."""

    base_url: str
    api_key_env: str
    currency: Literal["USD", "CNY"]
    foreign_model_prefixes: tuple[str, ...] = ()
    output_hosts: tuple[str, ...] = ()
    """Hosts the copy step may download outputs from: exact names or `*.` + three labels."""
    account: AccountClass = "enterprise"
    """The class of the account behind this route's key: which `account_limits` apply. The
    provider has no free call that tells (`doctor --live` reports it as unchecked)."""
    retention_hours: float = Field(default=24, gt=0)
    """How long the provider keeps a task queryable (reference section 0, C10: 24 h in the
    tutorial, 7 days in the API reference); reconcile windows must not assume more."""

    @field_validator("output_hosts")
    @classmethod
    def _narrow_hosts(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        problems = [p for p in map(_output_host_problem, hosts) if p]
        if problems:
            raise ValueError("; ".join(problems))
        return tuple(h.strip().lower() for h in hosts)

    output_url_seconds: float = Field(default=86_400.0, gt=0)
    """Lifetime of a signed output URL that does not carry its own expiry (reference C2:
    `X-Tos-Expires=86400`). Copies are retried for as long as the URL lives."""

    @property
    def task_retention_seconds(self) -> float:
        return self.retention_hours * 3600

    def api_key(self) -> str | None:
        """Read the key at the moment of use; it is never stored on a model."""
        value = os.environ.get(self.api_key_env, "").strip()
        return value or None

    def allows_output_host(self, host: str) -> bool:
        """Whether the copy step may download from `host`: an exact entry, or a `*.x.y.z`
        entry matching one or more labels in front of `x.y.z` (never `x.y.z` itself)."""
        host = host.lower().rstrip(".")
        for pattern in self.output_hosts:
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                    return True
            elif host == pattern or (pattern == "[::1]" and host == "::1"):
                return True
        return False


class AccountLimits(_Frozen):
    """The provider's published limits for one account class (reference section 0, C3, C4).

    Read by the capacity gate; the emulator's presets are the same figures.
    """

    concurrency_per_model: int = Field(gt=0)
    """Tasks running at once per model; tasks over it wait `queued`."""
    rpm_per_model: int = Field(gt=0)
    """Creates per minute per model; over it the create is refused 429."""
    queued_per_account: int = Field(gt=0)
    """Tasks `queued` per account, every model together; over it the create is refused 429."""


class ResolutionPrice(_Frozen):
    """Price per 1M tokens at one resolution, when it differs from the model's default."""

    standard: float = Field(ge=0)
    video_input: float = Field(ge=0)


class ModelPrice(_Frozen):
    """Price per 1M tokens in the route's currency: `standard` without video input,
    `video_input` with a reference video, optionally per resolution (2.0 at 1080p is 7.7 / 4.7
    where 480p and 720p are 7.0 / 4.3, reference section 0, C7); flex at `flex_factor`."""

    standard: float = Field(ge=0)
    video_input: float = Field(ge=0)
    flex_factor: float = Field(default=0.5, gt=0, le=1)
    by_resolution: dict[str, ResolutionPrice] = Field(default_factory=dict)

    def at(self, resolution: str) -> ResolutionPrice:
        """The (standard, video input) pair that applies at `resolution`."""
        return self.by_resolution.get(
            resolution, ResolutionPrice(standard=self.standard, video_input=self.video_input)
        )


class ModelSpec(_Frozen):
    """A model alias: its ID on each route, its capabilities, prices and fallback."""

    description: str = ""
    fallback: str | None = None
    ids: dict[str, Annotated[str, Field(pattern=MODEL_ID_PATTERN)]]
    resolutions: tuple[str, ...]
    ratios: tuple[str, ...]
    default_resolution: str
    default_ratio: str
    duration_min: int = Field(ge=1)
    duration_max: int = Field(ge=1)
    auto_duration: bool = False
    pixel_table: Literal["v10", "v15"] = "v15"
    audio: bool = False
    flex: bool = False
    camera_fixed: bool = False
    """Accepts `camera_fixed` (1.0/1.5 only; 2.x models refuse the field with a 400)."""
    max_reference_images: int = Field(default=0, ge=0)
    max_reference_videos: int = Field(default=0, ge=0)
    max_reference_audios: int = Field(default=0, ge=0)
    max_references_total: int = Field(default=0, ge=0)
    first_last_frame: bool = True
    max_prompt_chars: int = Field(default=4000, ge=1)
    expected_latency_seconds: float = Field(default=60, gt=0)
    queue_deadline_seconds: float = Field(default=900, gt=0)
    execution_deadline_seconds: float = Field(default=1800, gt=0)
    prices: dict[str, ModelPrice] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.duration_min > self.duration_max:
            raise ValueError("duration_min is greater than duration_max")
        if self.default_resolution not in self.resolutions:
            raise ValueError(f"default_resolution {self.default_resolution!r} not in resolutions")
        if self.default_ratio not in self.ratios:
            raise ValueError(f"default_ratio {self.default_ratio!r} not in ratios")
        return self


class StorageSettings(_Frozen):
    """Where videos go. Checked at load, so a CLI or worker given a URI no store can open
    refuses it at once instead of accepting it and failing (or being ignored) later."""

    uri: str = ".data/outputs"
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    resolve_hosts: dict[str, str] = Field(default_factory=dict)
    """Emulated stacks only: output host -> `http://address:port` the download client connects
    to instead of resolving the host (`adapters/host_map.py`). The URL, its host check against
    the route's `output_hosts` and the Host header stay the real ones; empty in production."""

    @field_validator("resolve_hosts")
    @classmethod
    def _targets(cls, mapping: dict[str, str]) -> dict[str, str]:
        for host, target in mapping.items():
            parts = urlsplit(target)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
                raise ValueError(
                    f"{host!r} -> {target!r}: the target must be http(s)://address[:port]"
                )
        return {host.lower(): target.rstrip("/") for host, target in mapping.items()}

    @field_validator("uri")
    @classmethod
    def _openable(cls, value: str) -> str:
        parts = urlsplit(value)
        if not value.strip():
            raise ValueError("must not be empty: a directory, file:///dir or s3://bucket/prefix")
        if parts.scheme == "s3" and not parts.netloc:
            raise ValueError(f"{value!r} names no bucket: use s3://bucket/prefix")
        if parts.scheme == "file" and not parts.path:
            raise ValueError(f"{value!r} names no directory: use file:///absolute/dir")
        if parts.scheme not in ("", "file", "s3"):
            raise ValueError(
                f"scheme {parts.scheme!r} is not supported: use a directory, "
                "file:///dir or s3://bucket/prefix"
            )
        return value

    @field_validator("s3_endpoint_url")
    @classmethod
    def _http_endpoint(cls, value: str) -> str:
        return _http_url_or_empty(value, "an S3 endpoint such as http://127.0.0.1:9000")


class LedgerSettings(_Frozen):
    url: str = "sqlite:///.data/ledger.sqlite3"

    @field_validator("url")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if value.startswith(SQLITE_URL_PREFIX) and len(value) > len(SQLITE_URL_PREFIX):
            return value
        if value.startswith(POSTGRES_URL_SCHEMES):
            return value
        scheme = urlsplit(value).scheme or "(none)"
        # Never echo the URL: a Postgres URL may carry a password.
        raise ValueError(
            f"scheme {scheme!r} is not supported: use sqlite:///path or postgresql://..."
        )


def _http_url_or_empty(value: str, example: str) -> str:
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL: give {example}, or leave it empty")
    return value


class CallbackSettings(_Frozen):
    base_url: str = ""
    secret_env: str = "SEEDANCE_CALLBACK_SECRET"  # noqa: S105 (a variable name, not a secret)

    @field_validator("base_url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        return _http_url_or_empty(
            value, "the receiver's public URL such as https://hooks.example.com"
        )

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)

    def secret(self) -> bytes | None:
        """The HMAC secret for callback tokens, read at the moment of use."""
        value = os.environ.get(self.secret_env, "")
        return value.encode() if value else None


class TemporalSettings(_Frozen):
    task_queue: str = "seedance-jobs"
    submit_task_queue: str = "seedance-submit"
    submit_rate_per_second: float = Field(default=0.0, ge=0)
    """The submit queue's server-side rate limit (0: none). With the capacity gate on, leave it
    at 0: the gate paces creates by the account's learned creates per minute, and a create the
    gate holds back still takes one of these dispatches, so in a large burst creates can wait
    past `retries.create_schedule_to_start_seconds` and end their jobs `SubmitQueueUnattended`."""
    connect_wait_seconds: float = Field(default=60, ge=0)
    """How long a starting worker keeps trying to reach Temporal before it exits: a worker
    started beside a restarting server (compose, a rolling deploy) waits for it."""
    entity_task_queue: str = ""
    """Where the shared entities run (the model breakers and the capacity gates); empty:
    `<task_queue>-entities`. Their own queue, so they never wait behind hundreds of job tasks."""
    max_cached_workflows: int = Field(default=1000, ge=0)
    """Job workflows a worker keeps in memory (the SDK's sticky cache; its default is 1,000).
    Past it, the least recently used job is evicted and replayed from its history on its next
    event: jobs waiting for capacity or for the provider then cost history on the server,
    not memory in the worker (docs/benchmarks.md, "Capacity": RSS per 1,000 waiting jobs)."""

    @property
    def entity_queue(self) -> str:
        return self.entity_task_queue or f"{self.task_queue}-entities"


class PollingSettings(_Frozen):
    callback_margin_factor: float = Field(default=1.5, gt=0)
    first_poll_factor: float = Field(default=0.5, gt=0)
    min_interval_seconds: float = Field(default=2.0, gt=0)
    max_interval_seconds: float = Field(default=60.0, gt=0)
    backoff: float = Field(default=1.6, ge=1)


class ReferenceSettings(_Frozen):
    """Checks run on every reference before any paid call (reference section 3.5)."""

    allow_private_hosts: bool = False
    check: bool = True
    max_image_bytes: int = Field(default=30 * 1024 * 1024, gt=0)
    max_video_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    """Reference section 0, C9 (the older 50 MB figure of section 3.5 came from a reseller)."""
    max_audio_bytes: int = Field(default=15 * 1024 * 1024, gt=0)
    max_request_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """The create body limit (C9): inline (base64) references count against it."""
    image_types: tuple[str, ...] = (
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/bmp",
        "image/tiff",
        "image/gif",
        "image/heic",
        "image/heif",
    )
    video_types: tuple[str, ...] = ("video/mp4", "video/quicktime")
    audio_types: tuple[str, ...] = (
        "audio/wav",
        "audio/x-wav",
        "audio/wave",
        "audio/mpeg",
        "audio/mp3",
    )
    timeout_seconds: float = Field(default=20.0, gt=0)


class TenantSettings(_Frozen):
    """One application tenant of the HTTP API. Its secrets are named, never held: the API
    keys as SHA-256 hashes (`sha256:<hex>`, one per key, so a key can be rotated by adding the
    new hash, moving the application over and removing the old one) and the `whsec_` secret
    its completion webhooks are signed with. Each comes from an environment variable or a
    file, read at the moment of use; a file is re-read when it changes, so keys rotate
    without a restart."""

    key_hashes_env: str = ""
    """A variable holding hashes separated by commas or whitespace."""
    key_hashes_file: str = ""
    """A file with one hash per line (`#` comments allowed)."""
    webhook_secret_env: str = ""
    webhook_secret_file: str = ""
    budgets: dict[str, RouteBudget] = Field(default_factory=dict)
    """Spending caps of this tenant per route name, in the route's currency (core.budget)."""

    def key_hashes(self) -> frozenset[str]:
        """Every configured hash, lower-cased; unreadable sources give none (no key works)."""
        text = os.environ.get(self.key_hashes_env, "") if self.key_hashes_env else ""
        if self.key_hashes_file:
            text += "\n" + _read_text(self.key_hashes_file)
        hashes: set[str] = set()
        for line in text.splitlines():
            line = line.split("#", 1)[0]
            hashes.update(part.strip().lower() for part in line.replace(",", " ").split())
        return frozenset(h for h in hashes if h)

    def webhook_secret(self) -> str | None:
        """The `whsec_...` signing secret, read at the moment of use."""
        value = os.environ.get(self.webhook_secret_env, "") if self.webhook_secret_env else ""
        if not value.strip() and self.webhook_secret_file:
            value = _read_text(self.webhook_secret_file)
        return value.strip() or None


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


class ApiSettings(_Frozen):
    """The HTTP API for applications (`python -m seedance_pipeline.api`)."""

    tenants: dict[str, TenantSettings] = Field(default_factory=dict)
    public_base_url: str = ""
    """Where applications reach the API (`https://videos.example.com`): the base of the
    durable links in job records and webhooks. Empty: `http://127.0.0.1:<API_PORT>`."""
    presign_seconds: int = Field(default=300, ge=1, le=7 * 24 * 3600)
    """Life of the presigned S3 URL a durable link redirects to."""
    max_batch_rows: int = Field(default=500, ge=1, le=10_000)
    allow_private_webhook_hosts: bool = False
    """Let completion webhooks reach loopback and private addresses (tests, one-host setups)."""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    session_secret_env: str = "SEEDANCE_API_SESSION_SECRET"  # noqa: S105 (a variable name)
    """Signs the jobs page's session cookies; unset: a random secret per process, so a
    restart signs everyone out (set it when several API processes serve one site)."""
    session_minutes: int = Field(default=12 * 60, ge=1)

    def base_url(self) -> str:
        """The base of durable links (the configured public URL, else this host's port)."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/") + "/"
        return f"http://127.0.0.1:{os.environ.get('API_PORT', '8702')}/"

    def session_secret(self) -> bytes | None:
        value = os.environ.get(self.session_secret_env, "")
        return value.encode() if value else None


class BreakerSettings(BreakerConfig):
    """Per-model circuit breaker: the thresholds (core.breaker) plus how it is deployed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    scope: str = ""
    """Appended to breaker IDs (`model-health:mini@scope`) when several deployments share a
    namespace (staging and production, or test runs); empty in a normal deployment."""

    admission_cache_seconds: float = Field(default=5.0, ge=0)
    """How long a worker admits jobs on its own after the breaker answered "closed" (0: ask
    every time). Another worker's trip, or an operator's, reaches it within this time."""
    report_linger_seconds: float = Field(default=0.5, ge=0)
    """How long a worker gathers outcome reports before sending them as one batch."""
    report_batch_max: int = Field(default=100, ge=1)

    def thresholds(self) -> BreakerConfig:
        return BreakerConfig.model_validate(
            self.model_dump(include=set(BreakerConfig.model_fields))
        )


class CapacitySettings(_Frozen):
    """The capacity gate: jobs wait for the account's limits instead of failing (issue 16)."""

    enabled: bool = True
    scope: str = ""
    """Appended to gate IDs (`capacity:byteplus@scope`) when deployments share a namespace."""
    headroom_per_model: int = Field(default=2, ge=0)
    """Tasks kept queued at the provider per model beyond those it runs (hides create latency)."""
    max_wait_minutes: float = Field(default=360, gt=0)
    """How long a job may wait for capacity before it ends failed_quota (extendable)."""
    decrease: float = Field(default=0.5, gt=0, lt=1)
    increase_share: float = Field(default=0.02, gt=0, le=1)
    lease_seconds: float = Field(default=300, gt=0)
    audit_seconds: float = Field(default=60, gt=0)


class ReconcileSettings(_Frozen):
    """The scheduled reconcile: one Temporal Schedule per route, created by the worker."""

    every_minutes: float = Field(default=60, ge=0)
    """How often each route is reconciled (and salvaged); 0: no schedule (by hand only)."""
    grace_minutes: float = Field(default=60, ge=0)
    """Tasks that changed this recently are in flight (a job may still be storing them)."""
    salvage: bool = True
    """Start a follower for each billed success without its ledger row or stored video."""


class RetrySettings(_Frozen):
    """How hard a job tries before it gives up on a model (then falls back) or fails."""

    create_attempts: int = Field(default=5, ge=1)
    """Creates per model that provably did not reach the provider or were refused with 5xx/429."""
    task_attempts: int = Field(default=2, ge=1)
    """Provider tasks per model that may end with an infrastructure failure."""
    create_backoff_seconds: float = Field(default=2.0, gt=0)
    reconcile_grace_seconds: float = Field(default=20.0, gt=0)
    """After an ambiguous create: how long to wait for the task to announce itself."""
    create_timeout_seconds: float = Field(default=60.0, gt=0)
    create_schedule_to_start_seconds: float = Field(default=120.0, gt=0)
    """How long a create waits for a worker on the submit queue before the job fails with the
    queue named (a missing or misconfigured submit worker), instead of waiting forever."""
    http_timeout_seconds: float = Field(default=30.0, gt=0)


class Settings(BaseSettings):
    """The whole configuration. Build it with `load_settings()`."""

    model_config = SettingsConfigDict(
        env_prefix="SEEDANCE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    default_model: str = "mini"
    default_route: str = "byteplus"
    routes: dict[str, RouteSettings]
    models: dict[str, ModelSpec]
    storage: StorageSettings = StorageSettings()
    ledger: LedgerSettings = LedgerSettings()
    callbacks: CallbackSettings = CallbackSettings()
    temporal: TemporalSettings = TemporalSettings()
    polling: PollingSettings = PollingSettings()
    references: ReferenceSettings = ReferenceSettings()
    retries: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    capacity: CapacitySettings = CapacitySettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    budgets: dict[str, RouteBudget] = Field(default_factory=dict)
    """Spending caps per route name, in the route's currency (core.budget)."""
    api: ApiSettings = ApiSettings()
    account_limits: dict[str, AccountLimits] = Field(default_factory=dict)
    """The provider's published limits per account class (`routes.<name>.account`)."""

    def limits_for(self, route_name: str) -> AccountLimits:
        """The published limits of the account class behind `route_name`."""
        route = self.route(route_name)
        try:
            return self.account_limits[route.account]
        except KeyError:
            raise ConfigError(
                f"routes.{route_name}.account = {route.account!r} has no [account_limits] table"
            ) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init kwargs (the TOML file, merged with explicit overrides) < environment variables.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _cross_check(self) -> Settings:
        problems = list(_cross_problems(self))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def model(self, alias: str) -> ModelSpec:
        try:
            return self.models[alias]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise ConfigError(f"unknown model alias {alias!r} (configured: {known})") from None

    def route(self, name: str) -> RouteSettings:
        try:
            return self.routes[name]
        except KeyError:
            known = ", ".join(sorted(self.routes))
            raise ConfigError(f"unknown route {name!r} (configured: {known})") from None

    def alias_for_model_id(self, model_id: str) -> tuple[str, str] | None:
        """The (alias, route) that a concrete model ID belongs to, if it is configured."""
        for alias, spec in self.models.items():
            for route, configured in spec.ids.items():
                if configured == model_id:
                    return alias, route
        return None


def _cross_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    routes = f"(routes: {', '.join(sorted(settings.routes)) or 'none'})"
    models = f"(models: {', '.join(sorted(settings.models)) or 'none'})"
    if settings.default_route not in settings.routes:
        problems.append(f"default_route {settings.default_route!r} is not in routes {routes}")
    if settings.default_model not in settings.models:
        problems.append(f"default_model {settings.default_model!r} is not in models {models}")
    for alias, spec in settings.models.items():
        if spec.fallback is not None and spec.fallback not in settings.models:
            problems.append(
                f"models.{alias}.fallback {spec.fallback!r} is not a configured model {models}"
            )
        for route_name, model_id in spec.ids.items():
            route = settings.routes.get(route_name)
            if route is None:
                problems.append(
                    f"models.{alias}.ids.{route_name}: no route named {route_name!r} {routes}"
                )
                continue
            for prefix in route.foreign_model_prefixes:
                if model_id.startswith(prefix):
                    problems.append(
                        f"models.{alias}.ids.{route_name} = {model_id!r}: a {prefix}* model ID "
                        f"belongs to another route, not {route_name!r}"
                    )
        for route_name in spec.prices:
            if route_name not in settings.routes:
                problems.append(
                    f"models.{alias}.prices.{route_name}: no route {route_name!r} {routes}"
                )
    for route_name, route in settings.routes.items():
        if settings.account_limits and route.account not in settings.account_limits:
            known = ", ".join(sorted(settings.account_limits))
            problems.append(
                f"routes.{route_name}.account {route.account!r} has no account_limits "
                f"table (configured: {known})"
            )
    for route_name in settings.budgets:
        if route_name not in settings.routes:
            problems.append(f"budgets.{route_name}: no route {route_name!r} {routes}")
    for tenant, tenant_settings in settings.api.tenants.items():
        if not TENANT_PATTERN.fullmatch(tenant):
            problems.append(
                f"api.tenants.{tenant}: a tenant name is 1-40 characters of lower-case "
                "letters, digits, _ and -"
            )
        for route_name in tenant_settings.budgets:
            if route_name not in settings.routes:
                problems.append(
                    f"api.tenants.{tenant}.budgets.{route_name}: no route {route_name!r} {routes}"
                )
    seen: set[str] = set()
    alias = settings.default_model
    while alias in settings.models and alias not in seen:
        seen.add(alias)
        alias = settings.models[alias].fallback or ""
    if alias in seen:
        problems.append(f"fallback chain from {settings.default_model!r} loops at {alias!r}")
    return problems
