"""Emulator configuration: one pydantic model fed by defaults, env vars and CLI flags.

Precedence is defaults < ``EMULATOR_*`` environment variables < CLI flags. Tests
build :class:`EmulatorConfig` directly and never read the environment, so a
developer's shell cannot change test behaviour by accident.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from seedance_pipeline.emulator.faults import FaultRule, parse_rules
from seedance_pipeline.emulator.limits import PRESETS, UNLIMITED, AccountClass, Limits

DEFAULT_API_KEY = "ek-emulator-local"
ENV_PREFIX = "EMULATOR_"
DEFAULT_TOS_HOSTS = {
    "byteplus": "ark-content-generation-ap-southeast-1.tos-ap-southeast-1.volces.com",
    "volcengine": "ark-content-generation-cn-beijing.tos-cn-beijing.volces.com",
}
"""Where the provider serves outputs (reference section 0, C1)."""


class ModelTiming(BaseModel):
    """Per-model override of the simulated queue and run time."""

    model_config = ConfigDict(extra="forbid")

    queue_seconds: float | None = Field(default=None, ge=0)
    run_seconds: float | None = Field(default=None, ge=0)


class EmulatorConfig(BaseModel):
    """Everything the emulator can be told at start-up."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # Network
    host: str = "127.0.0.1"
    port: int = Field(default=8700, ge=0, le=65535)
    public_url: str | None = Field(
        default=None, description="base of file URLs; default http://{host}:{port}"
    )

    # Auth
    api_keys: list[str] = Field(default_factory=lambda: [DEFAULT_API_KEY])

    # Lifecycle timing (seconds of emulator clock)
    queue_seconds: float = Field(default=2.0, ge=0)
    run_seconds: float = Field(default=8.0, ge=0)
    jitter: float = Field(default=0.0, ge=0, le=1, description="+/- fraction on both times")
    model_timings: dict[str, ModelTiming] = Field(default_factory=dict)
    flex_queue_factor: float = Field(default=1.0, ge=0, description="queue time x this for flex")

    # Limits (reference section 0, C3/C4; see limits.py). None = the account preset's value,
    # 0 = no limit. `unlimited` turns every limit off unless it is given explicitly: a test or
    # benchmark that needs a provider without limits says so with it.
    account: AccountClass = Field(default="enterprise", description="limits preset")
    unlimited: bool = False
    concurrency_per_model: int | None = Field(default=None, ge=0)
    rpm_per_model: int | None = Field(default=None, ge=0)
    queued_per_account: int | None = Field(default=None, ge=0)
    retry_after: bool = Field(
        default=False,
        description="send Retry-After on limit 429s (whether the provider does is unknown)",
    )
    default_page_size: int = Field(default=10, ge=1, le=500)
    retention_hours: float = Field(
        default=24, gt=0, description="query window (C10: 24 h per the tutorial; 7 days per docs)"
    )
    cancelled_retention_seconds: int = Field(default=86400, ge=1)

    # Output media
    url_ttl: int = Field(default=86400, ge=1)
    tos_urls: bool = Field(
        default=False,
        description="file URLs on the region's TOS host (https); clients map it to the emulator",
    )
    tos_hosts: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_TOS_HOSTS),
        description="region (byteplus/volcengine) -> output host used with tos_urls",
    )
    data_dir: Path = Path(".data/emulator")
    media_dir: Path | None = Field(
        default=None,
        description="where generated media is cached (default data_dir/media); emulators may "
        "share one, since each file appears whole, by rename",
    )
    signing_secret: str = Field(default_factory=lambda: secrets.token_hex(16))
    plus_one_frame: bool = Field(default=True, description="bill 24*d+1 frames (C6)")
    min_video_bytes: int = Field(default=0, ge=0)
    prewarm_media: bool = True
    audio_track: bool = Field(default=True, description="silent AAC track when generate_audio")

    # Callbacks
    callback_timeout: float = Field(default=5.0, gt=0)
    callback_retries: int = Field(default=3, ge=0)
    callback_retry_interval: float = Field(default=1.0, ge=0)
    callback_concurrency: int = Field(default=16, ge=1)

    # Misc
    endpoints: dict[str, str] = Field(
        default_factory=dict, description="endpoint ID (ep-...) -> model ID"
    )
    faults: list[FaultRule] = Field(default_factory=list)
    fault_seed: int | None = None
    log_level: str = "info"

    @field_validator("api_keys")
    @classmethod
    def _default_key(cls, keys: list[str]) -> list[str]:
        keys = [k.strip() for k in keys if k.strip()]
        return keys or [DEFAULT_API_KEY]

    @field_validator("faults", mode="before")
    @classmethod
    def _parse_faults(cls, value: Any) -> Any:
        return parse_rules(value) if isinstance(value, dict) else value

    def limits(self) -> Limits:
        """The limits in force: the account preset (or none when `unlimited`), with every
        explicit value on top (0 = that limit off)."""
        base = UNLIMITED if self.unlimited else PRESETS[self.account]

        def pick(explicit: int | None, preset: int | None) -> int | None:
            if explicit is None:
                return preset
            return explicit or None

        return Limits(
            concurrency_per_model=pick(self.concurrency_per_model, base.concurrency_per_model),
            rpm_per_model=pick(self.rpm_per_model, base.rpm_per_model),
            queued_per_account=pick(self.queued_per_account, base.queued_per_account),
            concurrency_4k=base.concurrency_4k,
            rpm_4k=base.rpm_4k,
        )

    def base_url(self) -> str:
        """Where file URLs point: ``public_url`` or the listening address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


# Fields whose env/CLI string form is a comma list or JSON rather than a scalar.
_LIST_FIELDS = {"api_keys"}
_JSON_FIELDS = {"model_timings", "endpoints", "tos_hosts"}


def load_faults_file(path: Path) -> list[FaultRule]:
    """Read a ``--faults`` JSON file (a list of rules or ``{"rules": [...]}``)."""
    return parse_rules(json.loads(path.read_text(encoding="utf-8")))


def raw_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Collect ``EMULATOR_<FIELD>`` variables as raw values for :class:`EmulatorConfig`.

    ``EMULATOR_FAULTS`` names a fault file (like ``--faults``); list fields take a
    comma list and dict fields take JSON. Unknown ``EMULATOR_*`` names are an error
    so a misspelt variable does not silently do nothing.
    """
    raw: dict[str, Any] = {}
    fields = EmulatorConfig.model_fields
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name == "faults":
            raw["faults"] = load_faults_file(Path(value)) if value else []
        elif name not in fields:
            raise ValueError(f"unknown environment variable {key}")
        elif name in _LIST_FIELDS:
            raw[name] = [v for v in value.split(",") if v.strip()]
        elif name in _JSON_FIELDS:
            raw[name] = json.loads(value)
        elif value == "" and fields[name].default is None:
            raw[name] = None
        else:
            raw[name] = value
    return raw


def build_config(environ: Mapping[str, str], overrides: Mapping[str, Any]) -> EmulatorConfig:
    """Defaults, then env vars, then explicit overrides (CLI flags that were given)."""
    raw = raw_from_env(environ)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return EmulatorConfig.model_validate(raw)
