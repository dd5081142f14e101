"""HTTP client for the ModelArk / Ark video task API (the same code for real and emulated).

Errors form a small tree so callers can tell what matters for money:
- `ProviderNotReached`: the request provably never reached the provider (connect failure);
  a create may be retried blindly.
- `ProviderAmbiguous`: the request may have been accepted (timeout after sending, connection
  reset mid-response, gateway 5xx); a create must be reconciled before any retry.
- `ProviderHTTPError`: the provider answered with an error body; `code`/`message` verbatim.
- `ProviderBadResponse`: a 2xx whose body is not what the API promises (not JSON, wrong
  shape, unknown status, or larger than `max_body_bytes`: answers are streamed and counted, so
  a broken proxy or a hostile endpoint cannot make the worker buffer megabytes per call).
Messages never include request headers, so the Bearer key cannot leak through an error.
"""

from __future__ import annotations

import math
import secrets
import string
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pydantic_core
from pydantic import ValidationError

from seedance_pipeline.core.models import ProviderTask
from seedance_pipeline.core.settings import RouteSettings
from seedance_pipeline.observability.logging import scrub_bytes

USER_AGENT = "seedance-pipeline/0.1"
_ALNUM = string.ascii_letters + string.digits
TASKS_PATH = "/contents/generations/tasks"
MAX_BODY_BYTES = 2 * 1024 * 1024
"""A task object is ~2 KB and a 100-item list page ~200 KB; anything past this is not an
answer the API gives."""
MAX_CODE_CHARS = 200
MAX_RETRY_AFTER = 3600.0
MAX_MESSAGE_CHARS = 2000


class ProviderError(Exception):
    """Base of every provider failure."""


class ProviderNotReached(ProviderError):
    pass


class ProviderAmbiguous(ProviderError):
    pass


class ProviderBadResponse(ProviderError):
    pass


class ProviderMissingKey(ProviderError):
    pass


class ProviderHTTPError(ProviderError):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status, self.code, self.message = status, code, message
        self.param, self.retry_after = param, retry_after
        super().__init__(f"HTTP {status} {code}: {message}")


def client_request_id() -> str:
    """The official SDKs' X-Client-Request-Id: yyyyMMddHHmmss + 20 random alphanumerics."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return stamp + "".join(secrets.choice(_ALNUM) for _ in range(20))


CallObserver = Callable[[str, str, float], None]
"""(operation, status, seconds): status is the HTTP status or the transport failure's kind."""


class ProviderClient:
    """Thin async wrapper over the four task endpoints, one route at a time."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        observer: CallObserver | None = None,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        redact: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self._http = http
        self._observer = observer
        self._max_body_bytes = max_body_bytes
        self._redact = redact

    def _headers(self, route: RouteSettings, route_name: str) -> dict[str, str]:
        key = route.api_key()
        if key is None:
            raise ProviderMissingKey(
                f"no API key for route {route_name!r}: set the {route.api_key_env} "
                "environment variable on the worker"
            )
        return {
            "Authorization": f"Bearer {key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "X-Client-Request-Id": client_request_id(),
        }

    async def _send(
        self,
        op: str,
        route: RouteSettings,
        route_name: str,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: list[tuple[str, str | int | float | bool | None]] | None = None,
    ) -> httpx.Response:
        headers = self._headers(route, route_name)
        url = route.base_url.rstrip("/") + path
        started = time.monotonic()
        status = "error"
        try:
            request = self._http.build_request(
                method, url, json=json, params=params, headers=headers
            )
            response = await self._read_bounded(
                await self._http.send(request, stream=True), self._secrets(route)
            )
            status = str(response.status_code)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            status = "not_reached"
            raise ProviderNotReached(
                f"{op}: could not connect to {route_name}: {type(exc).__name__}"
            ) from None
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            status = "no_answer"
            raise ProviderAmbiguous(
                f"{op}: no complete answer from {route_name}: {type(exc).__name__}"
            ) from None
        finally:
            if self._observer is not None:
                self._observer(op, status, time.monotonic() - started)
        if response.status_code >= 400:
            raise _http_error(response)
        if response.extensions.get(_TOO_LARGE):
            raise ProviderBadResponse(
                f"{op}: HTTP {response.status_code} with a body larger than "
                f"{self._max_body_bytes:,} bytes; not read"
            )
        return response

    def _secrets(self, route: RouteSettings) -> list[str]:
        """The route's key plus every other configured secret (`redact`), read now."""
        found = [route.api_key() or ""]
        if self._redact is not None:
            found += list(self._redact())
        return found

    async def _read_bounded(self, streamed: httpx.Response, secrets: list[str]) -> httpx.Response:
        """The answer read to at most `max_body_bytes`, as a complete Response, with every
        secret a provider might echo (\"invalid key sk-...\") scrubbed before it can reach an
        error, the history, the record, the manifest or the ledger.

        A longer body (declared or sent) comes back empty and flagged; an error status is then
        still classified by its status alone.
        """
        limit = self._max_body_bytes
        received = bytearray()
        too_large = False
        try:
            declared = streamed.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                too_large = True
            else:
                async for chunk in streamed.aiter_bytes():
                    received += chunk
                    if len(received) > limit:
                        too_large = True
                        break
        finally:
            await streamed.aclose()
        headers = [
            (name, value)
            for name, value in streamed.headers.multi_items()
            if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            streamed.status_code,
            headers=headers,
            content=b"" if too_large else scrub_bytes(bytes(received), secrets),
            request=streamed.request,
            extensions={_TOO_LARGE: too_large},
        )

    async def create(self, route: RouteSettings, route_name: str, body: dict[str, Any]) -> str:
        response = await self._send("create", route, route_name, "POST", TASKS_PATH, json=body)
        data = _json_object(response)
        task_id = data.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise ProviderAmbiguous(f"create answered {response.status_code} without a task id")
        return task_id

    async def get(self, route: RouteSettings, route_name: str, task_id: str) -> ProviderTask:
        response = await self._send("get", route, route_name, "GET", _task_path(task_id))
        return _task(_json_object(response))

    async def list(
        self,
        route: RouteSettings,
        route_name: str,
        *,
        model: str | None = None,
        status: str | None = None,
        task_ids: list[str] | None = None,
        page_num: int = 1,
        page_size: int = 100,
    ) -> tuple[int, list[ProviderTask]]:
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("page_num", page_num),
            ("page_size", page_size),
        ]
        if model:
            params.append(("filter.model", model))
        if status:
            params.append(("filter.status", status))
        params += [("filter.task_ids", t) for t in task_ids or []]
        response = await self._send("list", route, route_name, "GET", TASKS_PATH, params=params)
        data = _json_object(response)
        items = data.get("items") or []
        if not isinstance(items, list):
            raise ProviderBadResponse("list answered without an items array")
        return int(data.get("total") or 0), [_task(i) for i in items if isinstance(i, dict)]

    async def delete(self, route: RouteSettings, route_name: str, task_id: str) -> None:
        await self._send("delete", route, route_name, "DELETE", _task_path(task_id))


_TOO_LARGE = "seedance_body_too_large"


def _task_path(task_id: str) -> str:
    """The task's URL path with the ID as one opaque segment. IDs come from outside (a
    callback can announce one): unquoted, `../../x?y` would send our key to another path of
    the provider (httpx resolves dot segments), and a cancel would DELETE something else."""
    return f"{TASKS_PATH}/{quote(task_id, safe='')}"


def _json(response: httpx.Response) -> Any:
    """`pydantic_core.from_json`, not `json.loads`: deep nesting ("[[[[...") is a ValueError
    there instead of a RecursionError that no caller expects."""
    return pydantic_core.from_json(response.content, allow_inf_nan=False)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = _json(response)
    except ValueError:
        raise ProviderBadResponse(
            f"HTTP {response.status_code} with a body that is not JSON "
            f"({len(response.content)} bytes)"
        ) from None
    if not isinstance(data, dict):
        raise ProviderBadResponse(f"HTTP {response.status_code} with a JSON {type(data).__name__}")
    return data


def _task(data: dict[str, Any]) -> ProviderTask:
    try:
        return ProviderTask.model_validate(data)
    except ValidationError as exc:
        raise ProviderBadResponse(f"task object does not match the API: {_problems(exc)}") from None


def _problems(exc: ValidationError, shown: int = 4) -> str:
    """Which fields are wrong and how, quoting short scalar values (an unknown status is
    worth seeing verbatim); long or nested inputs are not echoed."""
    parts = []
    for err in exc.errors(include_url=False)[:shown]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        value = err.get("input")
        if err["type"] == "missing":
            parts.append(f"{where} missing")
        elif isinstance(value, str | int | float | bool) and len(repr(value)) <= 40:
            parts.append(f"{where} = {value!r}: {err['msg']}")
        else:
            parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - shown
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _http_error(response: httpx.Response) -> ProviderError:
    retry_after: float | None = None
    header = response.headers.get("Retry-After")
    if header:
        try:
            seconds = float(header)
        except ValueError:
            seconds = math.nan  # an HTTP date or junk: no hint
        # "inf" would overflow the timedelta the activity error carries.
        retry_after = min(max(0.0, seconds), MAX_RETRY_AFTER) if math.isfinite(seconds) else None
    try:
        body = _json(response)
        error = body.get("error") if isinstance(body, dict) else None
    except ValueError:
        error = None
    if not isinstance(error, dict):
        if response.status_code in (502, 503, 504):
            # A gateway answered, not the provider: the request may still have been accepted.
            return ProviderAmbiguous(
                f"gateway answered HTTP {response.status_code} without a provider error body"
            )
        return ProviderHTTPError(
            response.status_code,
            f"HTTP{response.status_code}",
            response.text[:300],
            retry_after=retry_after,
        )
    # Verbatim, but bounded: the message travels into history, the job record and the ledger.
    param = error.get("param")
    return ProviderHTTPError(
        response.status_code,
        str(error.get("code") or f"HTTP{response.status_code}")[:MAX_CODE_CHARS],
        _clip(str(error.get("message") or "")),
        param=param[:MAX_CODE_CHARS] if isinstance(param, str) else None,
        retry_after=retry_after,
    )


def _clip(message: str) -> str:
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[:MAX_MESSAGE_CHARS] + f"... ({len(message):,} chars)"
