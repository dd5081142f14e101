"""What every request handler shares: settings, the Temporal link, the session signer, the
ledger (opened on first use) and the caller's tenant."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from seedance_pipeline.adapters.ledger import open_ledger
from seedance_pipeline.adapters.ledger_schema import Ledger
from seedance_pipeline.api.errors import ApiError
from seedance_pipeline.api.jobs import JobsService
from seedance_pipeline.api.keys import Sessions, tenant_for_key
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.webhook.temporal_link import TemporalDown, TemporalLink

SESSION_COOKIE = "seedance_session"
SESSION_KIND = "session"
PAGE_LINK_KIND = "page-link"

bearer = HTTPBearer(auto_error=False, description="An API key of your tenant: `sdp_...`")
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="The jobs page's session"
)


@dataclass
class ApiState:
    settings: Settings
    link: TemporalLink
    sessions: Sessions
    _ledger: Ledger | None = None
    _ledger_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def jobs(self) -> JobsService:
        try:
            client = await self.link.get()
        except TemporalDown as exc:
            raise ApiError(
                503,
                "temporal_unavailable",
                f"Temporal is not reachable ({exc}); retry shortly",
                headers={"Retry-After": "5"},
            ) from None
        return JobsService(client, self.settings, self.sessions.secret)

    async def ledger(self) -> Ledger:
        async with self._ledger_lock:
            if self._ledger is None:
                self._ledger = await asyncio.to_thread(open_ledger, self.settings.ledger.url)
            return self._ledger

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


async def tenant(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    cookie: Annotated[str | None, Security(session_cookie)],
) -> str:
    """The caller's tenant: from `Authorization: Bearer <key>` or the page's session cookie."""
    state = api_state(request)
    if credentials is not None:
        found = tenant_for_key(state.settings.api, credentials.credentials)
        if found is None:
            raise ApiError(
                401,
                "invalid_api_key",
                "the API key is not valid (revoked, mistyped, or for another deployment)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return found
    if cookie:
        found = state.sessions.verify(cookie, SESSION_KIND)
        if found is not None and found in state.settings.api.tenants:
            return found
    raise ApiError(
        401,
        "missing_api_key",
        "send your API key as `Authorization: Bearer sdp_...`",
        headers={"WWW-Authenticate": "Bearer"},
    )


Tenant = Annotated[str, Depends(tenant)]
State = Annotated[ApiState, Depends(api_state)]
