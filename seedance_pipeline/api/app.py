"""The ASGI app: versioned routes under `/v1`, `/openapi.json`, interactive docs at `/docs`,
`/healthz` (the process) and `/readyz` (Temporal answers), the jobs page at `/`.

`create_app` takes a Temporal client *factory*: the API starts and answers `/healthz` before
Temporal is reachable, connects on first use and keeps the client (webhook.temporal_link).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from seedance_pipeline.api import (
    errors,
    routes_batches,
    routes_costs,
    routes_jobs,
    routes_media,
    routes_page,
)
from seedance_pipeline.api.keys import Sessions
from seedance_pipeline.api.state import ApiState
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.webhook.temporal_link import ClientFactory, TemporalLink

VERSION = "1.0.0"
DESCRIPTION = """Durable Seedance video generation for applications.

Every call but `/healthz` and `/readyz` needs an API key of your tenant:
`Authorization: Bearer sdp_...`. A tenant sees, cancels and downloads only its own jobs.
Send an `Idempotency-Key` with `POST /v1/jobs` and a retry can never make a second paid job.
When a job ends, its `webhook_url` receives `job.succeeded`, `job.failed` or `job.cancelled`,
signed per Standard Webhooks with your tenant's `whsec_` secret.
"""


def create_app(
    settings: Settings,
    *,
    client_factory: ClientFactory,
    connect_timeout_seconds: float = 5.0,
) -> FastAPI:
    link = TemporalLink(client_factory, connect_timeout=connect_timeout_seconds)
    state = ApiState(settings=settings, link=link, sessions=Sessions.for_settings(settings.api))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(
        title="seedance-pipeline API",
        version=VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "jobs", "description": "Generation jobs"},
            {"name": "media", "description": "Durable links to stored outputs"},
            {"name": "batches", "description": "Many jobs at once"},
            {"name": "estimate", "description": "Tokens and cost before anything runs"},
            {"name": "costs", "description": "The ledger, per tenant"},
            {"name": "health", "description": "Liveness and readiness"},
        ],
    )
    app.state.api = state
    errors.install(app)
    for module in (routes_jobs, routes_media, routes_batches, routes_costs, routes_page):
        app.include_router(module.router)

    @app.get("/healthz", tags=["health"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Temporal answers",
        responses={503: {"description": "Temporal unreachable"}},
    )
    async def readyz() -> JSONResponse:
        try:
            async with asyncio.timeout(connect_timeout_seconds + 2):
                client = await link.get()
                await client.workflow_service.get_system_info(
                    GetSystemInfoRequest(), retry=False, timeout=timedelta(seconds=2)
                )
        except Exception:
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    return app
