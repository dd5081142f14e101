"""The emulator's behaviour, independent of HTTP plumbing.

:class:`Emulator` owns the state (tasks, faults, stats, clock, media cache,
callback dispatcher) and implements each provider operation as a method that
returns JSON-ready data or raises :class:`~emulator.errors.ApiError`. The
Starlette routes in ``app.py`` only translate requests and responses, so the
rules live in one place and read in the order the provider applies them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from seedance_pipeline.emulator import ids
from seedance_pipeline.emulator.bad_bodies import RawAnswer, bad_body
from seedance_pipeline.emulator.callbacks import CallbackDispatcher
from seedance_pipeline.emulator.capacity import CapacityTracker
from seedance_pipeline.emulator.catalog import Catalog, default_catalog
from seedance_pipeline.emulator.clock import EmulatorClock
from seedance_pipeline.emulator.config import EmulatorConfig
from seedance_pipeline.emulator.errors import ApiError, because, invalid
from seedance_pipeline.emulator.faults import (
    Create5xx,
    Create429,
    CreateAmbiguous,
    CreateBadBody,
    CreateDrop,
    Expire,
    FaultRule,
    FaultSet,
    Get5xx,
    GetBadBody,
    InputModeration,
    InternalFailure,
    List5xx,
    MatchContext,
    OutputModeration,
    SlowDownload,
    Stuck,
    TruncatedDownload,
    UrlExpiresEarly,
    parse_rules,
)
from seedance_pipeline.emulator.limits import (
    QUEUE_CAP_CODE,
    RPM_CODE_ENDPOINT,
    RPM_CODE_MODEL,
    bucket,
)
from seedance_pipeline.emulator.media import MediaCache, VideoShape
from seedance_pipeline.emulator.ratelimit import RpmLimiter
from seedance_pipeline.emulator.signing import SignatureCheck, UrlSigner
from seedance_pipeline.emulator.stats import Stats
from seedance_pipeline.emulator.tasks import Outcome, TaskRecord, TaskStore
from seedance_pipeline.emulator.validation import GenerationRequest, validate_create

LIST_STATUSES = ("queued", "running", "cancelled", "succeeded", "failed", "expired")
FILE_TYPES = {"video.mp4": "video/mp4", "last_frame.png": "image/png"}
MIN_TICK, MAX_TICK = 0.01, 0.5

_OUTCOME_KINDS = frozenset({"output_moderation", "internal_failure", "expire", "stuck"})
_INFRA_KINDS = frozenset({"create_drop", "create_5xx", "create_429"})


@dataclass
class CreateResult:
    """What the create route must do: answer ``body`` (or ``raw`` bytes), maybe after a
    delay, or drop."""

    body: dict[str, Any] | None
    task_id: str | None = None
    drop: Literal["close", "reset"] | None = None
    delay: float = 0.0
    raw: RawAnswer | None = None


@dataclass
class FileAnswer:
    """A file to stream plus the download faults that apply to it."""

    path: Path
    media_type: str
    bytes_per_second: int | None = None
    truncate_at: TruncatedDownload | None = None


class FileError(Exception):
    """An object-store style refusal (403 AccessDenied / 404 NoSuchKey)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _broken(answer: dict[str, Any], rule: CreateBadBody | GetBadBody) -> RawAnswer:
    return bad_body(
        answer,
        rule.shape,
        status=rule.status,
        unknown_status=rule.unknown_status,
        huge_bytes=rule.huge_bytes,
    )


def _server_error(status: int, code: str) -> ApiError:
    return ApiError(
        status, code, "The service encountered an unexpected internal error. Please retry."
    )


class Emulator:
    """All emulator state and the provider operations on it."""

    def __init__(self, config: EmulatorConfig, catalog: Catalog | None = None) -> None:
        self.config = config
        self.catalog = catalog or default_catalog()
        self.clock = EmulatorClock()
        self.stats = Stats()
        self.faults = FaultSet(list(config.faults), seed=config.fault_seed)
        self.signer = UrlSigner(config.signing_secret, config.base_url())
        self.media = MediaCache(config.media_dir or Path(config.data_dir) / "media")
        self.rng = random.Random(config.fault_seed)
        self.limits = config.limits()
        self.store = TaskStore(
            self.signer,
            plus_one_frame=config.plus_one_frame,
            concurrency=self._concurrency,
            rng=self.rng,
        )
        self.capacity = CapacityTracker()
        self.store.observers.append(self.capacity.observe)
        self.store.listeners.append(self._on_transition)
        self.limiter = RpmLimiter()
        self.callbacks = CallbackDispatcher(
            self.stats,
            self.faults,
            timeout=config.callback_timeout,
            retries=config.callback_retries,
            retry_interval=config.callback_retry_interval,
            concurrency=config.callback_concurrency,
            other_callback_url=self._other_callback_url,
        )
        self._wake: asyncio.Event | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._digests: dict[Path, tuple[int, str]] = {}
        """(size, sha256) per produced media file (files never change once written)."""

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Start the state-machine ticker and callback workers (app lifespan)."""
        self._wake = asyncio.Event()
        await self.callbacks.start()
        self._ticker = asyncio.create_task(self._tick_loop())

    async def stop(self) -> None:
        """Stop background work (running encodes are abandoned, not awaited)."""
        self.media.close()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self.callbacks.stop()

    def set_base_url(self, url: str) -> None:
        """Point new file URLs somewhere else (when the real port is known late)."""
        self.signer.base_url = url.rstrip("/")

    def wake(self) -> None:
        """Make the ticker re-plan now (a task was added or the clock moved)."""
        if self._wake is not None:
            self._wake.set()

    async def _tick_loop(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            now = self.clock.now()
            self.store.advance(now)
            nxt = self.store.next_due
            delay = MAX_TICK if nxt is None else min(max(nxt - now, MIN_TICK), MAX_TICK)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def advance(self) -> float:
        """Bring every task up to date with the clock; returns now."""
        now = self.clock.now()
        self.store.advance(now)
        return now

    # -- helpers ---------------------------------------------------------------

    def _concurrency(self, counter: str) -> int | None:
        return self.limits.concurrency("4k" if counter.endswith("@4k") else "")

    def _retention_seconds(self) -> float:
        return self.config.retention_hours * 3600

    def _rate_limited(
        self, code: str, reason: str, counter: str, retry_after: int | None
    ) -> ApiError:
        """A limit's 429, counted per code; `Retry-After` only when the emulator is told to
        send it (whether the provider ever does is unknown, section 0)."""
        self.capacity.refused(code, counter)
        headers = {}
        if self.config.retry_after and retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return ApiError(429, code, because(reason), headers=headers)

    def _counter_of(self, body: Any) -> tuple[str, bool]:
        """(limit counter, called through an endpoint ID) of a raw create body, before it is
        validated: the model (endpoint IDs mapped to theirs), 4k apart."""
        raw = body.get("model") if isinstance(body, dict) else None
        model = raw if isinstance(raw, str) else ""
        resolution = body.get("resolution") if isinstance(body, dict) else None
        endpoint = model.startswith("ep-")
        model = self.config.endpoints.get(model, model)
        return bucket(model, resolution if isinstance(resolution, str) else ""), endpoint

    @staticmethod
    def task_context(task: TaskRecord) -> MatchContext:
        """Fault-matching facts of a stored task."""
        model = task.request_body.get("model")
        return MatchContext(
            prompt=task.req.prompt,
            model=model if isinstance(model, str) else task.req.model_id,
            reference_urls=task.req.reference_urls,
            api_key=task.api_key,
        )

    def _on_transition(self, task: TaskRecord) -> None:
        url = task.req.callback_url
        if url:
            self.callbacks.submit(
                task.id, url, task.to_api(), self.task_context(task), task.callback_reorder
            )

    def _other_callback_url(self, task_id: str, own_url: str) -> str | None:
        """A different task's callback URL (newest first) for ``callback_wrong_job``."""
        for t in reversed(list(self.store.tasks.values())):
            url = t.req.callback_url
            if t.id != task_id and url and url != own_url:
                return url
        for t in reversed(list(self.store.tasks.values())):
            if t.id != task_id and t.req.callback_url:
                return t.req.callback_url
        return None

    def authenticate(self, authorization: str | None, ctx_model: str | None = None) -> str:
        """The API key from ``Authorization: Bearer``; 401 like the provider otherwise."""
        key = None
        if authorization and authorization[:7].lower() == "bearer ":
            key = authorization[7:].strip()
        if not key or key not in self.config.api_keys:
            raise self._auth_error()
        if self.faults.fire({"auth_401"}, MatchContext(model=ctx_model, api_key=key)):
            raise self._auth_error()
        return key

    @staticmethod
    def _auth_error() -> ApiError:
        return ApiError(
            401,
            "AuthenticationError",
            "The API key or AK/SK in the request is missing or invalid.",
        )

    def _timing(self, req: GenerationRequest) -> tuple[float, float]:
        cfg = self.config
        override = cfg.model_timings.get(req.model_id)
        if override is None:
            for model_id in req.spec.all_ids():
                override = cfg.model_timings.get(model_id)
                if override is not None:
                    break
        queue = cfg.queue_seconds
        run = cfg.run_seconds
        if override is not None:
            queue = override.queue_seconds if override.queue_seconds is not None else queue
            run = override.run_seconds if override.run_seconds is not None else run
        if req.service_tier == "flex":
            queue *= cfg.flex_queue_factor
        if cfg.jitter:
            queue *= self.rng.uniform(1 - cfg.jitter, 1 + cfg.jitter)
            run *= self.rng.uniform(1 - cfg.jitter, 1 + cfg.jitter)
        return max(queue, 0.0), max(run, 0.0)

    def shape(self, task: TaskRecord) -> VideoShape:
        """The output file shape of a task."""
        r = task.req
        return VideoShape(
            width=r.width,
            height=r.height,
            frames=r.output_frames,
            audio=bool(r.generate_audio) and self.config.audio_track,
            min_bytes=self.config.min_video_bytes,
        )

    # -- provider operations -------------------------------------------------

    def create(
        self,
        authorization: str | None,
        body: Any,
        body_error: str | None,
        *,
        user_agent: str | None = None,
        client_request_id: str | None = None,
    ) -> CreateResult:
        """``POST /contents/generations/tasks``. ``body_error`` is set for unparsable JSON."""
        ctx0 = MatchContext.from_body(body, None)
        key = self.authenticate(authorization, ctx0.model)
        ctx = replace(ctx0, api_key=key)
        now = self.advance()

        counter, via_endpoint = self._counter_of(body)
        rpm = self.limits.rpm("4k" if counter.endswith("@4k") else "")
        wait = self.limiter.check(counter, rpm, now)
        if wait is not None:
            if via_endpoint:
                code, what = RPM_CODE_ENDPOINT, "the request rate (RPM) of the endpoint"
            else:
                code, what = RPM_CODE_MODEL, f"the request rate (RPM) of the model {ctx.model}"
            raise self._rate_limited(code, f"{what} exceeded its limit of {rpm}", counter, wait)

        rule = self.faults.fire(_INFRA_KINDS, ctx)
        if isinstance(rule, CreateDrop):
            return CreateResult(body=None, drop=rule.mode)
        if isinstance(rule, Create5xx):
            raise _server_error(rule.status, rule.code)
        if isinstance(rule, Create429):
            self.capacity.refused(rule.code, counter)
            raise ApiError(
                429,
                rule.code,
                because("the request rate exceeded the limit; please retry later"),
                headers={"Retry-After": str(math.ceil(rule.retry_after))},
            )
        if self.faults.fire({"overdue_403"}, ctx):
            raise ApiError(
                403,
                "AccountOverdueError",
                because("your account has an overdue balance; please top up and retry"),
            )
        if self.faults.fire({"model_not_open_404"}, ctx):
            raise ApiError(
                404,
                "ModelNotOpen",
                f"Your account has not activated the model {ctx.model}. Please activate "
                "the model service in the Ark Console.",
                type_="Not Found",
            )

        if body_error is not None:
            raise invalid("body", f"the request body is not valid JSON ({body_error})")
        req = validate_create(
            body,
            self.catalog,
            endpoints=self.config.endpoints,
            draft_lookup=self.store.draft_source,
        )

        moderation = self.faults.fire({"input_moderation"}, ctx)
        if isinstance(moderation, InputModeration):
            raise self._moderation_error(moderation, body)

        cap = self.limits.queued_per_account
        if cap is not None and self.capacity.queued_total() >= cap:
            raise self._rate_limited(
                QUEUE_CAP_CODE,
                f"the account already has {cap} queued tasks, the maximum allowed",
                counter,
                max(1, math.ceil(self.config.queue_seconds)),
            )

        broken = self.faults.fire({"create_bad_body"}, ctx)
        if isinstance(broken, CreateBadBody) and not broken.creates_task:
            fake = {"id": ids.task_id(now)}
            return CreateResult(body=None, raw=_broken(fake, broken))

        task = self._new_task(req, key, body, ctx, now)
        task.user_agent = user_agent
        task.client_request_id = client_request_id
        task.requests["create"] += 1
        self.store.add(task)
        if self.config.prewarm_media and task.outcome.kind == "succeed":
            self.media.prewarm(self.shape(task), req.return_last_frame)
        self.wake()

        answer: dict[str, Any] = {"id": task.id}
        if req.safety_identifier is not None:
            answer["safety_identifier"] = req.safety_identifier
        if isinstance(broken, CreateBadBody):
            task.faults.append(f"create_bad_body:{broken.shape}")
            return CreateResult(body=None, task_id=task.id, raw=_broken(answer, broken))
        ambiguous = self.faults.fire({"create_ambiguous"}, ctx)
        if isinstance(ambiguous, CreateAmbiguous):
            task.faults.append(f"create_ambiguous:{ambiguous.mode}")
            if ambiguous.mode == "reset":
                return CreateResult(body=None, task_id=task.id, drop="reset")
            return CreateResult(body=answer, task_id=task.id, delay=ambiguous.delay_seconds)
        return CreateResult(body=answer, task_id=task.id)

    def _new_task(
        self, req: GenerationRequest, key: str, body: dict[str, Any], ctx: MatchContext, now: float
    ) -> TaskRecord:
        applied: list[str] = []
        outcome = Outcome()
        rule: FaultRule | None = self.faults.fire(_OUTCOME_KINDS, ctx)
        if isinstance(rule, OutputModeration | InternalFailure):
            outcome = Outcome("fail", rule.code, rule.message)
        elif isinstance(rule, Expire):
            outcome = Outcome("expire", expire_phase=rule.phase)
        elif isinstance(rule, Stuck):
            outcome = Outcome("stuck", stuck_phase=rule.phase)
        if rule is not None:
            applied.append(rule.kind)
        ttl = self.config.url_ttl
        early = self.faults.fire({"url_expires_early"}, ctx)
        if isinstance(early, UrlExpiresEarly):
            ttl = early.ttl_seconds
            applied.append(early.kind)
        reorder = bool(req.callback_url) and self.faults.fire({"callback_reorder"}, ctx) is not None
        if reorder:
            applied.append("callback_reorder")
        queue_s, run_s = self._timing(req)
        task_id = ids.task_id(now)
        while task_id in self.store.tasks:
            task_id = ids.task_id(now)
        region = "volcengine" if req.model_id == req.spec.ids.volcengine else "byteplus"
        files_base = f"https://{self.config.tos_hosts[region]}" if self.config.tos_urls else None
        return TaskRecord(
            id=task_id,
            api_key=key,
            request_body=body,
            req=req,
            bucket=bucket(req.model_id, req.resolution),
            region=region,
            files_base=files_base,
            seed=req.seed,
            created_at=now,
            ready_at=now + queue_s,
            run_seconds=run_s,
            outcome=outcome,
            url_ttl=ttl,
            callback_reorder=reorder,
            faults=applied,
        )

    @staticmethod
    def _moderation_error(rule: InputModeration, body: dict[str, Any]) -> ApiError:
        content = body.get("content") or []
        wanted = "text" if rule.code.startswith(("InputText", "Sensitive")) else "image_url"
        if rule.code.startswith("InputVideo"):
            wanted = "video_url"
        index = rule.content_index
        if index is None:
            index = next(
                (i for i, item in enumerate(content) if item.get("type") == wanted),
                0,
            )
        noun = {"text": "text", "image_url": "image", "video_url": "video"}[wanted]
        if rule.code.endswith("PrivacyInformation"):
            reason = f"the input {noun} 'content[{index}]' may contain real person"
        else:
            reason = f"the input {noun} 'content[{index}]' may contain sensitive information"
        return ApiError(400, rule.code, because(reason), param=f"content[{index}]")

    def _not_found(self, task_id: str) -> ApiError:
        return ApiError(
            404,
            "NotFound",
            because(f"the specified task {task_id} does not exist or has been deleted"),
        )

    def get_task(self, authorization: str | None, task_id: str) -> dict[str, Any] | RawAnswer:
        """``GET /contents/generations/tasks/{id}``: the task object, or raw bytes when a
        ``get_bad_body`` fault breaks it."""
        stored = self.store.tasks.get(task_id)
        if stored is not None:
            stored.requests["get"] += 1
        model = stored.request_body.get("model") if stored else None
        key = self.authenticate(authorization, model if isinstance(model, str) else None)
        ctx = self.task_context(stored) if stored else MatchContext(api_key=key)
        ctx = replace(ctx, api_key=key)
        rule = self.faults.fire({"get_5xx"}, ctx)
        if isinstance(rule, Get5xx):
            raise _server_error(rule.status, rule.code)
        now = self.advance()
        task = self.store.visible(
            task_id, now, self._retention_seconds(), self.config.cancelled_retention_seconds
        )
        if task is None:
            raise self._not_found(task_id)
        broken = self.faults.fire({"get_bad_body"}, ctx)
        if isinstance(broken, GetBadBody):
            return _broken(task.to_api(), broken)
        return task.to_api()

    def list_tasks(
        self, authorization: str | None, query: Sequence[tuple[str, str]]
    ) -> dict[str, Any]:
        """``GET /contents/generations/tasks`` with page and filter parameters."""
        key = self.authenticate(authorization, None)
        rule = self.faults.fire({"list_5xx"}, MatchContext(api_key=key))
        if isinstance(rule, List5xx):
            raise _server_error(rule.status, rule.code)
        params: dict[str, list[str]] = {}
        for k, v in query:
            params.setdefault(k, []).append(v)
        page_num = self._page_param(params, "page_num", 1)
        page_size = self._page_param(params, "page_size", self.config.default_page_size)
        status = self._single(params, "filter.status")
        if status is not None and status not in LIST_STATUSES:
            raise invalid("filter.status", f"the status '{status}' is not valid")
        tier = self._single(params, "filter.service_tier")
        if tier is not None and tier not in ("default", "flex"):
            raise invalid("filter.service_tier", f"the service_tier '{tier}' is not valid")
        model = self._single(params, "filter.model")
        wanted_ids = set(params.get("filter.task_ids", []))
        now = self.advance()
        items = []
        for t in self.store.listing(
            now, self._retention_seconds(), self.config.cancelled_retention_seconds
        ):
            if status is not None and t.status != status:
                continue
            if tier is not None and t.req.service_tier != tier:
                continue
            if model is not None and model not in (t.req.model_id, t.request_body.get("model")):
                continue
            if wanted_ids and t.id not in wanted_ids:
                continue
            items.append(t)
        start = (page_num - 1) * page_size
        return {
            "total": len(items),
            "items": [t.to_api() for t in items[start : start + page_size]],
        }

    @staticmethod
    def _single(params: Mapping[str, list[str]], name: str) -> str | None:
        values = params.get(name)
        if not values or values[-1] == "":
            return None
        return values[-1]

    def _page_param(self, params: Mapping[str, list[str]], name: str, default: int) -> int:
        raw = self._single(params, name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise invalid(name, f"the parameter `{name}` must be an integer") from None
        if not 1 <= value <= 500:
            raise invalid(name, f"the parameter `{name}` must be between 1 and 500")
        return value

    def delete_task(self, authorization: str | None, task_id: str) -> dict[str, Any]:
        """``DELETE /contents/generations/tasks/{id}`` with the rules of section 7."""
        stored = self.store.tasks.get(task_id)
        if stored is not None:
            stored.requests["delete"] += 1
        self.authenticate(authorization, None)
        now = self.advance()
        task = self.store.visible(
            task_id, now, self._retention_seconds(), self.config.cancelled_retention_seconds
        )
        if task is None:
            raise self._not_found(task_id)
        if task.status == "queued":
            self.store.cancel(task, now)
        elif task.status in ("running", "cancelled"):
            raise invalid(
                "id",
                f"the task {task_id} is {task.status} and cannot be cancelled or deleted",
            )
        else:
            self.store.delete(task, now)
        self.wake()
        return {}

    async def open_file(
        self, path: str, date: str | None, expires: str | None, signature: str | None
    ) -> FileAnswer:
        """Authorise and produce a task's output file (``/{model}/{object}``), answering
        like TOS: a bad signature or an expired URL is 403, an unknown object 404."""
        check = self.signer.check(path, date, expires, signature, self.clock.now())
        if check is SignatureCheck.BAD:
            raise FileError(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if check is SignatureCheck.EXPIRED:
            raise FileError(403, "AccessDenied", "Request has expired")
        self.advance()
        ref = self.signer.lookup(path)
        task = self.store.tasks.get(ref.task_id) if ref else None
        if task is not None:
            task.requests["file"] += 1
        if ref is None:
            raise FileError(404, "NoSuchKey", "The specified key does not exist.")
        file_path = await self._output_path(task, ref.name)
        assert task is not None  # _output_path refused a missing task
        ctx = self.task_context(task)
        answer = FileAnswer(path=file_path, media_type=FILE_TYPES[ref.name])
        slow = self.faults.fire({"slow_download"}, ctx)
        if isinstance(slow, SlowDownload):
            answer.bytes_per_second = slow.bytes_per_second
        cut = self.faults.fire({"truncated_download"}, ctx)
        if isinstance(cut, TruncatedDownload):
            answer.truncate_at = cut
        return answer

    async def _output_path(self, task: TaskRecord | None, name: str) -> Path:
        """The rendered file behind a task's output `name`; 404 unless the task succeeded
        and produced it (a last frame only when asked for)."""
        if (
            task is None
            or task.status != "succeeded"
            or (name == "last_frame.png" and not task.req.return_last_frame)
        ):
            raise FileError(404, "NoSuchKey", "The specified key does not exist.")
        shape = self.shape(task)
        return await (
            self.media.video(shape) if name == "video.mp4" else self.media.last_frame(shape)
        )

    # -- admin -----------------------------------------------------------------

    async def file_digest(self, task_id: str, name: str) -> dict[str, Any]:
        """Size and sha256 of a task's output file, as served, whatever its URL says.

        Admin only: a harness compares stored copies with the provider's bytes after the URLs
        expired (a `url_expires_early` fault), so no signature is checked and no download is
        counted on the task.
        """
        if name not in FILE_TYPES:
            raise FileError(404, "NoSuchKey", "The specified key does not exist.")
        path = await self._output_path(self.store.tasks.get(task_id), name)
        digest = self._digests.get(path)
        if digest is None:
            digest = await asyncio.to_thread(_sha256_of, path)
            self._digests[path] = digest
        return {"task_id": task_id, "name": name, "size": digest[0], "sha256": digest[1]}

    def set_faults(self, data: Any) -> list[dict[str, Any]]:
        """Replace the fault set (raises FaultSpecError with every problem listed)."""
        self.faults.replace(parse_rules(data))
        return self.faults.describe()

    def admin_tasks(self) -> list[dict[str, Any]]:
        """Every task ever created, deleted ones included, oldest first."""
        self.advance()
        return [t.to_admin() for t in self.store.tasks.values()]

    def admin_stats(self) -> dict[str, Any]:
        """Counters for requests, callbacks, fault hits and task states."""
        self.advance()
        snap = self.stats.snapshot(self.faults.hits_by_kind, self.store.status_counts())
        snap["media_encodes"] = self.media.encodes
        snap["capacity"] = self.capacity.snapshot(
            self.limits, account=self.config.account, retry_after=self.config.retry_after
        )
        return snap

    def admin_capacity(self, since: float = 0.0) -> dict[str, Any]:
        """The capacity counters plus the running/queued series per model since `since`."""
        self.advance()
        snap = self.capacity.snapshot(
            self.limits, account=self.config.account, retry_after=self.config.retry_after
        )
        snap["series"] = self.capacity.series(since)
        return snap

    def reset(self) -> None:
        """Forget tasks, stats, faults, callbacks, rate windows and clock offset."""
        self.store.clear()
        self.capacity.clear()
        self.stats.clear()
        self.faults.clear()
        self.callbacks.reset()
        self.limiter.clear()
        self.clock.reset()
        self.wake()

    def advance_clock(self, seconds: float) -> float:
        """Move the emulator clock forward and apply whatever became due."""
        now = self.clock.advance(seconds)
        self.store.advance(now)
        self.wake()
        return now


def _sha256_of(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
