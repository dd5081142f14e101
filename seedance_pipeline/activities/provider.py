"""Provider activities: resolve the model, create/get/list/cancel tasks.

`create_task` is the one dangerous call (the API has no idempotency key). It is run with a
single attempt; the workflow decides, from the error type, whether a new create is safe
(`ProviderNotReached`, an error answer) or whether it must reconcile first (`ProviderAmbiguous`,
a timeout, a lost worker). The callback URL is built here from the worker's secret, so the
secret never enters workflow history. A create that carries the job's capacity ask asks the
account's gate first and is sent only when the slot is granted (`GateAsker`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from seedance_pipeline.activities.errors import to_application_error
from seedance_pipeline.adapters.provider_client import ProviderClient, ProviderError
from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.callback_token import callback_url
from seedance_pipeline.core.capacity import (
    CapacityAnswer,
    CapacityRelease,
    GateAsk,
    GateConfig,
    GateRef,
    ModelLimits,
    gate_id,
)
from seedance_pipeline.core.fingerprint import Fingerprint
from seedance_pipeline.core.models import (
    CreateTaskInput,
    CreateTaskResult,
    FindTasksInput,
    ProviderTask,
    ResolvedModel,
    ResolveInput,
    TaskRef,
)
from seedance_pipeline.core.pricing import estimate
from seedance_pipeline.core.request_body import (
    build_create_body,
    effective_ratio,
    effective_resolution,
)
from seedance_pipeline.core.settings import ConfigError, Settings
from seedance_pipeline.core.validation import pinned_alias, validate_request

log = structlog.get_logger(__name__)


def _gate_ref(settings: Settings, route_name: str, latency: float) -> GateRef | None:
    """Where the route's capacity gate is and the limits a job asks under (None: gate off)."""
    cap = settings.capacity
    if not cap.enabled:
        return None
    account = settings.limits_for(route_name)
    config = GateConfig(
        queued_per_account=account.queued_per_account,
        headroom_per_model=cap.headroom_per_model,
        decrease=cap.decrease,
        increase_share=cap.increase_share,
        lease_seconds=cap.lease_seconds,
        audit_seconds=cap.audit_seconds,
    )
    limits = ModelLimits(
        concurrency=account.concurrency_per_model,
        rpm=account.rpm_per_model,
        expected_latency_seconds=latency,
    )
    return GateRef(
        gate_id=gate_id(route_name, cap.scope),
        task_queue=settings.temporal.entity_queue,
        route=route_name,
        limits=limits,
        config=config,
        max_wait_seconds=cap.max_wait_minutes * 60,
    )


AskGate = Callable[[GateAsk], Awaitable[CapacityAnswer]]
ReleaseSlot = Callable[[str, CapacityRelease], Awaitable[None]]
"""`(gate ID, release)`: returns once the gate has it."""


def _without_client(what: str) -> ApplicationError:
    """The gate is reached through the worker's Temporal client, which this one was built
    without (a test's or a script's `ProviderActivities`)."""
    return ApplicationError(
        f"this worker cannot {what} (built without a Temporal client): start it with "
        "`python -m seedance_pipeline.worker`",
        type=et.CONFIG_ERROR,
        non_retryable=True,
    )


class ProviderActivities:
    def __init__(
        self,
        client: ProviderClient,
        settings: Settings,
        ask_gate: AskGate | None = None,
        release_slot: ReleaseSlot | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._ask_gate = ask_gate
        self._release_slot = release_slot

    @activity.defn(name="resolve_model")
    async def resolve_model(self, data: ResolveInput) -> ResolvedModel:
        """Alias -> route, model ID, limits, price. The result is recorded in history, so a
        config change mid-job never changes what a running job does on replay."""
        settings = self._settings
        pinned = pinned_alias(data.request, settings) if data.alias is None else None
        alias = data.alias or pinned or data.request.model or settings.default_model
        route_name = data.request.route or settings.default_route
        try:
            spec = settings.model(alias)
            route = settings.route(route_name)
        except ConfigError as exc:
            raise ApplicationError(str(exc), type=et.CONFIG_ERROR, non_retryable=True) from None
        problems = validate_request(data.request, settings, alias)
        if problems:
            raise ApplicationError(
                f"request invalid for {alias}: " + "; ".join(str(p) for p in problems),
                {"code": et.REQUEST_INVALID, "problems": [str(p) for p in problems]},
                type=et.REQUEST_INVALID,
                non_retryable=True,
            )
        model_id = spec.ids.get(route_name)
        if data.request.model_id and data.alias is None:
            model_id = data.request.model_id
            if any(model_id.startswith(p) for p in route.foreign_model_prefixes):
                raise ApplicationError(
                    f"model_id {model_id!r} belongs to another route than {route_name!r}",
                    type=et.CONFIG_ERROR,
                    non_retryable=True,
                )
        if not model_id:
            raise ApplicationError(
                f"model {alias!r} has no ID on route {route_name!r}",
                type=et.CONFIG_ERROR,
                non_retryable=True,
            )
        price = spec.prices.get(route_name)
        resolution = effective_resolution(data.request, spec)
        ratio = effective_ratio(data.request, spec)
        at = price.at(resolution) if price else None
        guess = estimate(
            data.request, spec, price, route.currency, resolution=resolution, ratio=ratio
        )
        polling = settings.polling
        callbacks = settings.callbacks.enabled and settings.callbacks.secret() is not None
        factor = polling.callback_margin_factor if callbacks else polling.first_poll_factor
        return ResolvedModel(
            capacity=_gate_ref(settings, route_name, spec.expected_latency_seconds),
            alias=alias,
            route=route_name,
            model_id=model_id,
            currency=route.currency,
            price_per_million=at.standard if at else 0.0,
            price_per_million_video_input=at.video_input if at else 0.0,
            flex_factor=price.flex_factor if price else 1.0,
            unit_price=guess.unit_price,
            estimated_tokens=guess.tokens,
            estimated_cost=guess.cost,
            pixel_table=spec.pixel_table,
            expected_latency_seconds=spec.expected_latency_seconds,
            queue_deadline_seconds=spec.queue_deadline_seconds,
            execution_deadline_seconds=spec.execution_deadline_seconds,
            fallback=spec.fallback,
            callbacks_enabled=callbacks,
            poll_first_seconds=max(
                polling.min_interval_seconds, spec.expected_latency_seconds * factor
            ),
            poll_min_seconds=polling.min_interval_seconds,
            poll_max_seconds=polling.max_interval_seconds,
            poll_backoff=polling.backoff,
            resolution=resolution,
            ratio=ratio,
            create_attempts=settings.retries.create_attempts,
            task_attempts=settings.retries.task_attempts,
            create_backoff_seconds=settings.retries.create_backoff_seconds,
            reconcile_grace_seconds=settings.retries.reconcile_grace_seconds,
            create_timeout_seconds=settings.retries.create_timeout_seconds,
            check_references=settings.references.check,
            breaker=settings.breaker.enabled,
            # A tenant's own caps on the route need the check too (the tenant rides in its input).
            budgeted=route_name in settings.budgets
            or any(route_name in t.budgets for t in settings.api.tenants.values()),
            submit_queue=settings.temporal.submit_task_queue,
            create_schedule_to_start_seconds=settings.retries.create_schedule_to_start_seconds,
            output_url_seconds=route.output_url_seconds,
            task_retention_seconds=route.task_retention_seconds,
        )

    @activity.defn(name="create_task")
    async def create_task(self, data: CreateTaskInput) -> CreateTaskResult:
        structlog.contextvars.bind_contextvars(
            job_id=data.job_id, submit_no=data.submit_no, model_id=data.model.model_id
        )
        granted_at = None
        if data.ask is not None:
            answer = await self._ask(data.ask)
            if answer.granted is None:  # the gate holds it back: nothing is sent
                return CreateTaskResult(waiting=answer.waiting)
            granted_at = answer.granted.at
        route = self._settings.route(data.model.route)
        url = None
        secret = self._settings.callbacks.secret()
        if data.model.callbacks_enabled and secret:
            url = callback_url(
                self._settings.callbacks.base_url, data.job_id, data.submit_no, secret
            )
        body = build_create_body(
            data.request,
            data.model.model_id,
            data.model.resolution,
            data.model.ratio,
            url,
            fingerprint=Fingerprint(data.job_id, data.run, data.submit_no),
        )
        try:
            task_id = await self._client.create(route, data.model.route, body)
        except ProviderError as exc:
            log.warning("provider.create_failed", error=str(exc))
            raise to_application_error(exc, "create") from None
        log.info("provider.created", task_id=task_id)
        return CreateTaskResult(task_id=task_id, granted_at=granted_at)

    async def _ask(self, ask: GateAsk) -> CapacityAnswer:
        if self._ask_gate is None:
            raise _without_client("ask a capacity gate")
        return await self._ask_gate(ask)

    @activity.defn(name="get_task")
    async def get_task(self, ref: TaskRef) -> ProviderTask:
        """The task as the provider has it. With `release_to`, a succeeded task's capacity
        slot is given back before the answer returns, so the job pays no message of its own
        for it (the gate takes many jobs' releases in one signal)."""
        structlog.contextvars.bind_contextvars(job_id=ref.job_id, task_id=ref.task_id)
        try:
            task = await self._client.get(self._settings.route(ref.route), ref.route, ref.task_id)
        except ProviderError as exc:
            raise to_application_error(exc, "get") from None
        if ref.release_to is not None and task.status == "succeeded":
            await self._release(ref.release_to, CapacityRelease(job_id=ref.job_id, task_id=task.id))
        return task

    async def _release(self, gate_id: str, message: CapacityRelease) -> None:
        if self._release_slot is None:
            raise _without_client("release a capacity slot")
        await self._release_slot(gate_id, message)

    @activity.defn(name="find_tasks")
    async def find_tasks(self, data: FindTasksInput) -> list[ProviderTask]:
        """Tasks of one model created in a time window: the list endpoint as second source of
        truth after an ambiguous create."""
        route = self._settings.route(data.route)
        found: list[ProviderTask] = []
        try:
            for page in range(1, 11):
                total, items = await self._client.list(
                    route, data.route, model=data.model_id, page_num=page, page_size=100
                )
                found += [
                    t
                    for t in items
                    if t.created_at is None
                    or data.created_after <= t.created_at <= data.created_before
                ]
                if page * 100 >= total or not items:
                    break
        except ProviderError as exc:
            raise to_application_error(exc, "list") from None
        return found

    @activity.defn(name="cancel_task")
    async def cancel_task(self, ref: TaskRef) -> bool:
        """DELETE a queued task. False when the provider refuses (already running)."""
        try:
            await self._client.delete(self._settings.route(ref.route), ref.route, ref.task_id)
        except ProviderError as exc:
            log.info(
                "provider.cancel_refused", job_id=ref.job_id, task_id=ref.task_id, error=str(exc)
            )
            return False
        return True
