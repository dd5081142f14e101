"""`POST /callbacks/{token}`: token -> bounded body -> task object -> signal -> answer.

The order is deliberate: the token is checked before a byte of the body is read (a forged URL
costs us nothing), the body is bounded before it is parsed, and Temporal is touched last. Every
step answers a 4xx of its own; the only 5xx is 503 when Temporal cannot take the signal, because
that is our fault and the provider should retry. Nothing a caller sends can produce a 5xx: an
unexpected error before delivery is answered 400 (and logged with its traceback).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from seedance_pipeline.core.callback_token import CallbackTarget, InvalidToken, read_token
from seedance_pipeline.core.models import ProviderCallback
from seedance_pipeline.observability.logging import scrub_bytes
from seedance_pipeline.webhook.body import BodyTooLarge, read_limited
from seedance_pipeline.webhook.delivery import Delivery, deliver
from seedance_pipeline.webhook.metrics import Metrics
from seedance_pipeline.webhook.outcome import (
    ACCEPTED,
    FORGED,
    IGNORED_FINISHED,
    UNAVAILABLE,
    UNKNOWN_JOB,
    Answer,
    Result,
    malformed,
    too_large,
)
from seedance_pipeline.webhook.parse import BadBody, parse_task
from seedance_pipeline.webhook.temporal_link import TemporalDown, TemporalLink

log = structlog.get_logger(__name__)

_BY_DELIVERY = {
    Delivery.SIGNALLED: ACCEPTED,
    Delivery.FINISHED: IGNORED_FINISHED,
    Delivery.UNKNOWN_JOB: UNKNOWN_JOB,
    Delivery.REFUSED: malformed(422, "temporal refused the callback payload"),
    Delivery.UNAVAILABLE: UNAVAILABLE,
}
_QUIET = frozenset({Result.ACCEPTED, Result.IGNORED})


class CallbackHandler:
    """The endpoint. One instance per app; holds no per-request state."""

    def __init__(
        self,
        *,
        link: TemporalLink,
        secret: bytes,
        max_body_bytes: int,
        rpc_timeout: timedelta,
        answer_budget: float,
        metrics: Metrics,
        redact: Callable[[], Iterable[str]] = list,
    ) -> None:
        self._link = link
        self._secret = secret
        self._max_body_bytes = max_body_bytes
        self._rpc_timeout = rpc_timeout
        self._answer_budget = answer_budget
        self._metrics = metrics
        self._redact = redact

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        fields: dict[str, object] = {}
        try:
            answer = await self._answer(request, fields)
        except Exception:
            log.exception("callback_unhandled_error", **fields)
            answer = Answer(Result.ERROR, 400, {"error": "callback could not be processed"})
        elapsed = time.perf_counter() - started
        self._metrics.observe(answer.result, elapsed)
        emit = log.info if answer.result in _QUIET else log.warning
        emit(
            "callback",
            result=answer.result.value,
            http_status=answer.status_code,
            elapsed_ms=round(elapsed * 1000, 1),
            **fields,
        )
        return answer.response()

    async def _answer(self, request: Request, fields: dict[str, object]) -> Answer:
        token = str(request.path_params.get("token", ""))
        target = _read(token, self._secret)
        if target is None:
            fields["token_chars"] = len(token)  # never the token: its MAC is a capability
            return FORGED
        fields.update(job_id=target.job_id, submit_no=target.submit_no)

        try:
            body = await read_limited(request, self._max_body_bytes)
        except BodyTooLarge:
            return too_large(self._max_body_bytes)
        except ClientDisconnect:
            return malformed(400, "client disconnected before the body ended")
        fields["body_bytes"] = len(body)
        # The body is unsigned and goes into history: a secret echoed in it never does.
        body = scrub_bytes(body, [self._secret.decode("utf-8", "replace"), *self._redact()])

        try:
            task = parse_task(body)
        except BadBody as exc:
            fields["reason"] = exc.reason
            return malformed(exc.status_code, exc.reason)
        fields.update(task_id=task.id, task_status=task.status)

        callback = ProviderCallback(
            submit_no=target.submit_no, task=task, received_at=datetime.now(UTC)
        )
        return await self._deliver(target.job_id, callback, fields)

    async def _deliver(
        self, job_id: str, callback: ProviderCallback, fields: dict[str, object]
    ) -> Answer:
        try:
            async with asyncio.timeout(self._answer_budget):
                client = await self._link.get()
                delivery = await deliver(client, job_id, callback, rpc_timeout=self._rpc_timeout)
        except TemporalDown:
            fields["reason"] = "temporal not connected"
            return UNAVAILABLE
        except TimeoutError:
            fields["reason"] = f"no answer from temporal within {self._answer_budget}s"
            return UNAVAILABLE
        except Exception:
            # Past validation the caller's part is done: a failure here is on our side.
            log.exception("callback_delivery_error", **fields)
            return Answer(
                Result.ERROR, UNAVAILABLE.status_code, UNAVAILABLE.body, UNAVAILABLE.headers
            )
        return _BY_DELIVERY[delivery]


def _read(token: str, secret: bytes) -> CallbackTarget | None:
    """The token's target, or None for anything forged or malformed.

    `read_token` raises TypeError/UnicodeEncodeError (not InvalidToken) for some non-ASCII
    tokens, so those are refused here first and the wider exceptions are caught as well.
    """
    if not token.isascii():
        return None
    try:
        return read_token(token, secret)
    except (InvalidToken, ValueError, TypeError):
        return None
