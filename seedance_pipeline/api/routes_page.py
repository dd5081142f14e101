"""The jobs page (`GET /`): the tenant's recent jobs with the last frame as thumbnail, the
outcome, model and cost, and a player for the stored video; filter by outcome.

Server-rendered. A browser cannot send an `Authorization` header with an `<img>` or a
`<video>`, so the page signs in with a session cookie: a signed, expiring token naming the
tenant (HttpOnly, SameSite=Strict; never the key itself), set by the sign-in form or by a
short-lived page link from `POST /v1/page-links`. The media on the page are the durable links,
which accept that cookie.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from seedance_pipeline.api.errors import ApiError
from seedance_pipeline.api.jobs import JobsService, list_query, summary_of
from seedance_pipeline.api.keys import tenant_for_key
from seedance_pipeline.api.routes_jobs import ERRORS
from seedance_pipeline.api.state import (
    PAGE_LINK_KIND,
    SESSION_COOKIE,
    SESSION_KIND,
    ApiState,
    State,
    Tenant,
    api_state,
)
from seedance_pipeline.core.api_schema import JobSummary, PageLink
from seedance_pipeline.core.app_webhooks import links_for
from seedance_pipeline.core.models import JobRecord, Outcome

PAGE_JOBS = 24
PAGE_LINK_SECONDS = 600
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
router = APIRouter()


def _render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(name).render(title="jobs", **context)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _signed_in(state: ApiState, tenant: str, target: str = "/") -> Response:
    token, _ = state.sessions.issue(tenant, SESSION_KIND, state.settings.api.session_minutes * 60)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=state.settings.api.session_minutes * 60,
        httponly=True,
        samesite="strict",
        secure=state.settings.api.public_base_url.startswith("https://"),
        path="/",
    )
    return response


def _session_tenant(state: ApiState, request: Request) -> str | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    tenant = state.sessions.verify(cookie, SESSION_KIND) if cookie else None
    return tenant if tenant in state.settings.api.tenants else None


@router.get("/", include_in_schema=False)
async def jobs_page(
    request: Request,
    t: str | None = None,
    outcome: str | None = Query(default=None, max_length=40),
) -> Response:
    state = api_state(request)
    if t is not None:
        linked = state.sessions.verify(t, PAGE_LINK_KIND)
        if linked is None or linked not in state.settings.api.tenants:
            return _render("login.html", 401, error="this page link has expired; sign in")
        return _signed_in(state, linked, "/" + (f"?outcome={outcome}" if outcome else ""))
    tenant = _session_tenant(state, request)
    if tenant is None:
        return _render("login.html")
    chosen = outcome if outcome in Outcome._value2member_map_ else None
    jobs = await state.jobs()
    cards = await _cards(jobs, tenant, chosen)
    return _render(
        "jobs.html",
        tenant=tenant,
        outcome=chosen,
        outcomes=[o.value for o in Outcome],
        cards=cards,
    )


async def _cards(jobs: JobsService, tenant: str, outcome: str | None) -> list[dict[str, Any]]:
    query = list_query(tenant, outcome=outcome)
    executions = [e async for e in jobs.client.list_workflows(query, limit=PAGE_JOBS)]
    gate = asyncio.Semaphore(8)

    async def one(summary: JobSummary) -> dict[str, Any]:
        async with gate:
            desc = await jobs.client.get_workflow_handle(summary.job_id).describe()
            record = await jobs.record(desc)
        return _card(summary, record)

    return list(await asyncio.gather(*(one(summary_of(e)) for e in executions)))


def _card(summary: JobSummary, record: JobRecord) -> dict[str, Any]:
    links = links_for(record)
    status = record.outcome.value if record.outcome else record.state.value
    return {
        "job_id": record.job_id,
        "status": status,
        "badge": status if record.outcome else "running",
        "model": record.model_alias or summary.model or "-",
        "cost": record.cost if record.cost is not None else summary.cost,
        "currency": record.currency or summary.currency or "",
        "prompt": record.request.prompt if record.request else "",
        "when": summary.created_at.strftime("%Y-%m-%d %H:%M UTC") if summary.created_at else "",
        "video": links.video,
        "thumbnail": links.last_frame,
        "placeholder": "no video" if record.outcome else f"{record.state.value} ...",
        "error": f"{record.error.code}: {record.error.message}"[:160] if record.error else None,
    }


@router.post("/login", include_in_schema=False)
async def login(request: Request) -> Response:
    state = api_state(request)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("api_key") or [""])[0].strip()
    tenant = tenant_for_key(state.settings.api, key)
    if tenant is None:
        return _render("login.html", 401, error="that API key is not valid")
    return _signed_in(state, tenant)


@router.post("/logout", include_in_schema=False)
async def logout() -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post(
    "/v1/page-links",
    response_model=PageLink,
    tags=["page"],
    responses=ERRORS,
    summary="A link that opens the jobs page signed in",
)
async def page_link(tenant: Tenant, state: State, request: Request) -> PageLink:
    """For an application's own admin screen: a URL valid for 10 minutes that signs the
    browser in to this tenant's jobs page (the key never goes into a URL)."""
    if tenant not in state.settings.api.tenants:  # pragma: no cover - tenant() checked it
        raise ApiError(401, "invalid_api_key", "unknown tenant")
    token, expires = state.sessions.issue(tenant, PAGE_LINK_KIND, PAGE_LINK_SECONDS)
    base = (
        state.settings.api.base_url()
        if state.settings.api.public_base_url
        else str(request.base_url)
    )
    return PageLink(
        url=urljoin(base, f"/?t={token}"), expires_at=datetime.fromtimestamp(expires, UTC)
    )
