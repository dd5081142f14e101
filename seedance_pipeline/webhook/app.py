"""The ASGI app: routes, health and readiness, metrics, JSON errors.

`create_app` takes a client *factory*, not a client: the receiver starts and answers `/healthz`
before Temporal is reachable, connects on the first callback or readiness probe, and keeps the
client once it has one (see `webhook.temporal_link`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import timedelta

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.settings import ConfigError
from seedance_pipeline.observability.logging import secret_values
from seedance_pipeline.webhook.handler import CallbackHandler
from seedance_pipeline.webhook.metrics import Metrics
from seedance_pipeline.webhook.temporal_link import ClientFactory, TemporalLink

DEFAULT_MAX_BODY_BYTES = 256 * 1024
"""A task object is a few hundred bytes; 256 KiB leaves room for anything the provider adds."""


def create_app(
    *,
    client_factory: ClientFactory,
    secret: bytes,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    rpc_timeout_seconds: float = 2.0,
    answer_budget_seconds: float = 4.0,
    connect_timeout_seconds: float = 2.0,
    redact: Callable[[], Iterable[str]] | None = None,
) -> Starlette:
    """Build the receiver.

    `client_factory` must return a client with the pydantic data converter
    (`clients.temporal_client.connect` does). `answer_budget_seconds` bounds connect + signal +
    describe together, so the provider (which waits 5 s) always hears back from us.
    `redact` gives the secrets to scrub from callback bodies before they are signalled into
    history (default: the configured API keys, read from the environment at each callback);
    the callback secret itself is always scrubbed.
    """
    if not secret:
        raise ValueError("callback secret is empty")
    if max_body_bytes <= 0:
        raise ValueError("max_body_bytes must be positive")
    rpc_timeout = timedelta(seconds=rpc_timeout_seconds)
    link = TemporalLink(client_factory, connect_timeout=connect_timeout_seconds)
    metrics = Metrics()
    callbacks = CallbackHandler(
        link=link,
        secret=secret,
        max_body_bytes=max_body_bytes,
        rpc_timeout=rpc_timeout,
        answer_budget=answer_budget_seconds,
        metrics=metrics,
        redact=redact or _configured_secrets(),
    )

    async def healthz(request: Request) -> Response:
        """The process is alive; says nothing about Temporal (that is `/readyz`)."""
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """Ready when a client is connected and the frontend answers a cheap RPC."""
        try:
            async with asyncio.timeout(connect_timeout_seconds + rpc_timeout_seconds):
                client = await link.get()
                await client.workflow_service.get_system_info(
                    GetSystemInfoRequest(), retry=False, timeout=rpc_timeout
                )
        except Exception:
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    app = Starlette(
        routes=[
            Route("/callbacks/{token}", callbacks.handle, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _json_http_error},
    )
    # No 307 to the path without its trailing slash (Starlette's default): a caller that got
    # the path wrong is told so (404), not sent elsewhere with its body.
    app.router.redirect_slashes = False
    app.state.temporal = link
    app.state.metrics = metrics
    return app


def _configured_secrets() -> Callable[[], list[str]]:
    """The secret variables the packaged (or SEEDANCE_CONFIG) settings name, read per call."""
    try:
        settings = load_settings()
    except ConfigError:
        return list
    return lambda: secret_values(settings)


async def _json_http_error(request: Request, exc: Exception) -> Response:
    """Routing errors (404, 405) as JSON like every other answer."""
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for HTTPException
        return JSONResponse({"error": "bad request"}, status_code=400)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
