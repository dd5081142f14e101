"""Settings: routes, models, prices, storage, ledger, callbacks, queues.

Everything that rotates or differs per deployment (model IDs with their date suffix, base URLs,
prices, the names of the variables that hold keys) comes from `config/seedance.toml` or the
environment, never from code. The module is pure (no network), so the starter can validate a
request before anything starts and the workflow can import the models it defines.

Secrets are not fields: a route names the environment variable that holds its key and
`RouteSettings.api_key()` reads it at the moment of use, so a dumped Settings object can never
leak a key into history, logs or manifests.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from seedance_pipeline.core.breaker import BreakerConfig
from seedance_pipeline.core.budget import RouteBudget

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "seedance.toml"
CONFIG_ENV = "SEEDANCE_CONFIG"
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
"""Provider model and endpoint IDs (`dreamina-seedance-2-0-260128`, `ep-2026...-abcde`)."""


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the entry at fault."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RouteSettings(_Frozen):
    """One provider route: where to send requests, how to authenticate, what currency it bills."""

    base_url: str
    api_key_env: str
    currency: Literal["USD", "CNY"]
    foreign_model_prefixes: tuple[str, ...] = ()
    output_hosts: tuple[str, ...] = ()
    output_url_seconds: float = Field(default=86_400.0, gt=0)
    """Lifetime of a signed output URL that does not carry its own expiry (reference C2:
    `X-Tos-Expires=86400`). Copies are retried for as long as the URL lives."""
    task_retention_seconds: float = Field(default=86_400.0, gt=0)
    """How long the provider keeps a task queryable. The tutorial says 24 h, the API reference
    7 days (reference C10): the shorter is the default, so a follower or reconcile never
    counts on a task the provider may already have forgotten."""

    def api_key(self) -> str | None:
        """Read the key at the moment of use; it is never stored on a model."""
        value = os.environ.get(self.api_key_env, "").strip()
        return value or None

    def allows_output_host(self, host: str) -> bool:
        """Whether the copy step may download from `host` (glob patterns, e.g. `*.volces.com`)."""
        host = host.lower()
        return any(fnmatch.fnmatch(host, pattern.lower()) for pattern in self.output_hosts)


class ModelPrice(_Frozen):
    """Price per 1M tokens in the route's currency."""

    standard: float = Field(ge=0)
    video_input: float = Field(ge=0)
    flex_factor: float = Field(default=0.5, gt=0, le=1)


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
    uri: str = ".data/outputs"
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"


class LedgerSettings(_Frozen):
    url: str = "sqlite:///.data/ledger.sqlite3"


class CallbackSettings(_Frozen):
    base_url: str = ""
    secret_env: str = "SEEDANCE_CALLBACK_SECRET"  # noqa: S105 (a variable name, not a secret)

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
    health_task_queue: str = ""
    """Where the model breakers (`ModelHealthWorkflow`) run; empty: `<task_queue>-health`.
    Their own queue, so admissions and reports never wait behind hundreds of job tasks."""

    @property
    def health_queue(self) -> str:
        return self.health_task_queue or f"{self.task_queue}-health"


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
    max_video_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    max_audio_bytes: int = Field(default=15 * 1024 * 1024, gt=0)
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
    budgets: dict[str, RouteBudget] = Field(default_factory=dict)
    """Spending caps per route name, in the route's currency (core.budget)."""

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
    for route_name in settings.budgets:
        if route_name not in settings.routes:
            problems.append(f"budgets.{route_name}: no route {route_name!r} {routes}")
    seen: set[str] = set()
    alias = settings.default_model
    while alias in settings.models and alias not in seen:
        seen.add(alias)
        alias = settings.models[alias].fallback or ""
    if alias in seen:
        problems.append(f"fallback chain from {settings.default_model!r} loops at {alias!r}")
    return problems


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load the TOML file (SEEDANCE_CONFIG or the packaged default), then the environment.

    `overrides` are deep-merged over the file (tests use them); environment variables win over
    both. Any problem raises ConfigError with the offending entries named.
    """
    chosen = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)
    try:
        data = tomllib.loads(chosen.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {chosen}") from None
    except OSError as exc:
        raise ConfigError(f"config file {chosen} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {chosen} is not UTF-8 text (byte {exc.start}): not valid TOML"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {chosen} is not valid TOML: {exc}") from None
    merged = _deep_merge(data, overrides)
    # Settings(**merged) would take `_env_file`, `_cli_parse_args`, ... as pydantic-settings'
    # own options (read a file as dotenv, parse argv) instead of refusing them as unknown keys.
    unknown = sorted(key for key in merged if key not in Settings.model_fields)
    if unknown:
        known = ", ".join(Settings.model_fields)
        raise ConfigError(
            f"invalid configuration in {chosen}: unknown top-level keys {unknown} (known: {known})"
        )
    try:
        return Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration in {chosen}: {_describe(exc)}") from None
    except SettingsError as exc:
        # A SEEDANCE_* variable that is not valid JSON for a table or list field.
        raise ConfigError(f"invalid environment override: {_env_suspects(exc)}") from None


def _env_suspects(exc: SettingsError) -> str:
    """pydantic-settings names only the top-level field; name the variables (and the keys
    they set) that feed it, without their values (a value may be a secret)."""
    found = re.search(r'field "([^"]+)"', str(exc))
    field = found.group(1) if found else ""
    prefix = f"SEEDANCE_{field}".upper()
    names = sorted(n for n in os.environ if field and n.upper().startswith(prefix))
    if not names:
        return str(exc)
    keys = [n[len("SEEDANCE_") :].lower().replace("__", ".") for n in names]
    pairs = ", ".join(f"{n} ({k})" for n, k in zip(names, keys, strict=True))
    return f"not valid JSON for the field {field!r}: check {pairs}"


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)
