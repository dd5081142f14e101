"""Fault rules: declarative misbehaviour that tests and benchmarks switch on.

A rule names a ``kind`` (what goes wrong), an optional ``match`` (which requests
or tasks it applies to, AND-ed), a ``probability`` and an optional ``max_hits``.
Rules are checked in order; the first rule of a wanted kind that matches and
wins its coin toss fires. Hits are counted per rule and per kind so tests can
assert that the fault really happened.

The schema is a pydantic discriminated union on ``kind`` with ``extra="forbid"``,
so a typo in a fault file is a 400 that names the field rather than a rule that
silently never fires.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

TaskStatusName = Literal["queued", "running", "succeeded", "failed", "expired"]


class FaultMatch(BaseModel):
    """Conditions (all optional, AND-ed) that a request or task must meet."""

    model_config = ConfigDict(extra="forbid")

    prompt_contains: str | None = None
    model: str | None = None
    reference_url: str | None = Field(
        default=None, description="substring of any media URL in content[]"
    )
    api_key: str | None = None


class _Rule(BaseModel):
    """Fields shared by every kind."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    match: FaultMatch = Field(default_factory=FaultMatch)
    max_hits: int | None = Field(default=None, ge=0)


class Create5xx(_Rule):
    kind: Literal["create_5xx"]
    status: int = Field(default=500, ge=500, le=599)
    code: str = "InternalServiceError"


class Create429(_Rule):
    kind: Literal["create_429"]
    retry_after: float = Field(default=1.0, ge=0)
    code: str = "RateLimitExceeded.EndpointRPMExceeded"


class CreateDrop(_Rule):
    kind: Literal["create_drop"]
    mode: Literal["close", "reset"] = "close"


class CreateAmbiguous(_Rule):
    kind: Literal["create_ambiguous"]
    mode: Literal["reset", "delay"] = "reset"
    delay_seconds: float = Field(default=5.0, ge=0)


class InputModeration(_Rule):
    kind: Literal["input_moderation"]
    code: Literal[
        "InputTextSensitiveContentDetected",
        "InputImageSensitiveContentDetected",
        "InputImageSensitiveContentDetected.PrivacyInformation",
        "InputVideoSensitiveContentDetected.PrivacyInformation",
        "SensitiveContentDetected",
    ] = "InputTextSensitiveContentDetected"
    content_index: int | None = Field(default=None, ge=0)


class OutputModeration(_Rule):
    kind: Literal["output_moderation"]
    code: str = "OutputVideoSensitiveContentDetected.PolicyViolation"
    message: str = (
        "The request failed because the output video may be related to copyright restrictions."
    )


class InternalFailure(_Rule):
    kind: Literal["internal_failure"]
    code: str = "InternalServiceError"
    message: str = "The service encountered an unexpected internal error."


class Expire(_Rule):
    kind: Literal["expire"]
    phase: Literal["queued", "running"] = "running"


class Stuck(_Rule):
    kind: Literal["stuck"]
    phase: Literal["queued", "running"] = "running"


class Auth401(_Rule):
    kind: Literal["auth_401"]


class Overdue403(_Rule):
    kind: Literal["overdue_403"]


class ModelNotOpen404(_Rule):
    kind: Literal["model_not_open_404"]


class Get5xx(_Rule):
    kind: Literal["get_5xx"]
    status: int = Field(default=500, ge=500, le=599)
    code: str = "InternalServiceError"


class List5xx(_Rule):
    """The task list answers 5xx (an outage of the whole read API, with `get_5xx`). A list
    names no task, so only the key in `match` applies."""

    kind: Literal["list_5xx"]
    status: int = Field(default=500, ge=500, le=599)
    code: str = "InternalServiceError"


BodyShape = Literal[
    "not_json", "not_object", "missing_fields", "wrong_types", "unknown_status", "huge"
]


class _BadBody(_Rule):
    """A 2xx (by default) whose body breaks the API's promise: what a mangling proxy, a
    provider bug or an API change looks like to the client."""

    shape: BodyShape
    status: int = Field(default=200, ge=200, le=299)
    unknown_status: str = Field(default="exploded", min_length=1)
    huge_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)


class GetBadBody(_BadBody):
    kind: Literal["get_bad_body"]


class CreateBadBody(_BadBody):
    kind: Literal["create_bad_body"]
    creates_task: bool = True
    """The task is made (and billed) before the answer is mangled; false: no task."""


class SlowDownload(_Rule):
    kind: Literal["slow_download"]
    bytes_per_second: int = Field(gt=0)


class TruncatedDownload(_Rule):
    kind: Literal["truncated_download"]
    after_bytes: int | None = Field(default=None, ge=0)
    fraction: float | None = Field(default=None, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _one_limit(self) -> TruncatedDownload:
        if self.after_bytes is not None and self.fraction is not None:
            raise ValueError("give after_bytes or fraction, not both")
        if self.after_bytes is None and self.fraction is None:
            self.fraction = 0.5
        return self

    def cut_at(self, size: int) -> int:
        """Byte offset (within the full file) after which the connection is closed."""
        if self.after_bytes is not None:
            return min(self.after_bytes, max(size - 1, 0))
        assert self.fraction is not None
        return int(size * self.fraction)


class UrlExpiresEarly(_Rule):
    kind: Literal["url_expires_early"]
    ttl_seconds: int = Field(ge=0)


class CallbackRuleBase(_Rule):
    statuses: list[TaskStatusName] | None = Field(
        default=None, description="only deliveries of these statuses (default: all)"
    )

    def applies_to(self, status: str) -> bool:
        return self.statuses is None or status in self.statuses


class CallbackDrop(CallbackRuleBase):
    kind: Literal["callback_drop"]


class CallbackDuplicate(CallbackRuleBase):
    kind: Literal["callback_duplicate"]
    count: int = Field(default=2, ge=2, le=20)


class CallbackReorder(_Rule):
    kind: Literal["callback_reorder"]


class CallbackDelay(CallbackRuleBase):
    kind: Literal["callback_delay"]
    seconds: float = Field(ge=0)


class CallbackWrongJob(CallbackRuleBase):
    kind: Literal["callback_wrong_job"]


FaultRule = Annotated[
    Create5xx
    | Create429
    | CreateDrop
    | CreateAmbiguous
    | InputModeration
    | OutputModeration
    | InternalFailure
    | Expire
    | Stuck
    | Auth401
    | Overdue403
    | ModelNotOpen404
    | Get5xx
    | List5xx
    | GetBadBody
    | CreateBadBody
    | SlowDownload
    | TruncatedDownload
    | UrlExpiresEarly
    | CallbackDrop
    | CallbackDuplicate
    | CallbackReorder
    | CallbackDelay
    | CallbackWrongJob,
    Field(discriminator="kind"),
]

FAULT_KINDS: tuple[str, ...] = (
    "create_5xx",
    "create_429",
    "create_drop",
    "create_ambiguous",
    "input_moderation",
    "output_moderation",
    "internal_failure",
    "expire",
    "stuck",
    "auth_401",
    "overdue_403",
    "model_not_open_404",
    "get_5xx",
    "list_5xx",
    "get_bad_body",
    "create_bad_body",
    "slow_download",
    "truncated_download",
    "url_expires_early",
    "callback_drop",
    "callback_duplicate",
    "callback_reorder",
    "callback_delay",
    "callback_wrong_job",
)

_RULES_ADAPTER: TypeAdapter[list[FaultRule]] = TypeAdapter(list[FaultRule])


class FaultSpecError(ValueError):
    """A fault set that does not validate; the message lists every problem."""


def parse_rules(data: Any) -> list[FaultRule]:
    """Validate a fault set given as a list of rules or as ``{"rules": [...]}``."""
    if isinstance(data, dict):
        unknown = set(data) - {"rules"}
        if unknown:
            raise FaultSpecError(f"unknown top-level keys {sorted(unknown)}; expected 'rules'")
        data = data.get("rules", [])
    if not isinstance(data, list):
        raise FaultSpecError("a fault set is a JSON list of rules or an object {'rules': [...]}")
    try:
        return _RULES_ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(f"rules.{loc}: {err['msg']}")
        raise FaultSpecError("; ".join(problems)) from exc


@dataclass(frozen=True)
class MatchContext:
    """What a rule's ``match`` is compared against."""

    prompt: str = ""
    model: str | None = None
    reference_urls: tuple[str, ...] = ()
    api_key: str | None = None

    @classmethod
    def from_body(cls, body: Any, api_key: str | None) -> MatchContext:
        """Extract prompt, model and media URLs from a (possibly invalid) create body."""
        if not isinstance(body, dict):
            return cls(api_key=api_key)
        model = body.get("model") if isinstance(body.get("model"), str) else None
        texts: list[str] = []
        urls: list[str] = []
        content = body.get("content")
        if isinstance(content, list):
            for item in content:
                if not isinstance(item, dict):
                    continue
                if item.get("type") == "text" and isinstance(item.get("text"), str):
                    texts.append(item["text"])
                for key in ("image_url", "video_url", "audio_url"):
                    media = item.get(key)
                    if isinstance(media, dict) and isinstance(media.get("url"), str):
                        urls.append(media["url"])
        return cls(
            prompt="\n".join(texts), model=model, reference_urls=tuple(urls), api_key=api_key
        )


def matches(rule: FaultRule, ctx: MatchContext) -> bool:
    """True when every condition in ``rule.match`` holds for ``ctx``."""
    m = rule.match
    if m.prompt_contains is not None and m.prompt_contains not in ctx.prompt:
        return False
    if m.model is not None and m.model != ctx.model:
        return False
    if m.reference_url is not None and not any(m.reference_url in u for u in ctx.reference_urls):
        return False
    return m.api_key is None or m.api_key == ctx.api_key


@dataclass
class FaultSet:
    """The active rules plus hit counters; replaced wholesale by ``PUT /_emulator/faults``."""

    rules: list[FaultRule] = field(default_factory=list)
    seed: int | None = None
    hits_by_kind: Counter[str] = field(default_factory=Counter)
    _rule_hits: list[int] = field(default_factory=list)
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._rule_hits = [0] * len(self.rules)

    def replace(self, rules: list[FaultRule]) -> None:
        """Install a new rule list; per-rule hit counts restart, per-kind totals stay."""
        self.rules = list(rules)
        self._rule_hits = [0] * len(self.rules)

    def clear(self) -> None:
        """Remove all rules and forget all hits."""
        self.replace([])
        self.hits_by_kind.clear()

    def fire(
        self,
        kinds: frozenset[str] | set[str],
        ctx: MatchContext,
        accept: Callable[[FaultRule], bool] | None = None,
    ) -> FaultRule | None:
        """The first rule of one of ``kinds`` that applies to ``ctx``, counting the hit.

        ``accept`` filters rules further (e.g. by callback status) before the
        coin toss, so a rule that does not apply never spends a hit.
        """
        for index, rule in enumerate(self.rules):
            if rule.kind not in kinds or not matches(rule, ctx):
                continue
            if accept is not None and not accept(rule):
                continue
            if rule.max_hits is not None and self._rule_hits[index] >= rule.max_hits:
                continue
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            self._rule_hits[index] += 1
            self.hits_by_kind[rule.kind] += 1
            return rule
        return None

    def describe(self) -> list[dict[str, Any]]:
        """Rules as JSON, each with its current ``hits`` count."""
        out = []
        for index, rule in enumerate(self.rules):
            item = rule.model_dump(mode="json", exclude_none=True)
            item["hits"] = self._rule_hits[index]
            out.append(item)
        return out
