"""HTTP surface of the emulator: provider routes, signed file routes, admin routes.

Handlers are thin: they turn the request into arguments for
:class:`~emulator.service.Emulator` and its result into a response. The
application class itself (outermost layer, before Starlette's own middleware)
adds ``X-Request-Id``, echoes ``X-Client-Request-Id``, counts requests per
operation and status, and keeps the server's raw ``send`` reachable so faults
can cut connections.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from seedance_pipeline.emulator import ids
from seedance_pipeline.emulator.bad_bodies import RawAnswer
from seedance_pipeline.emulator.config import EmulatorConfig
from seedance_pipeline.emulator.connection import RAW_RECEIVE_KEY, RAW_SEND_KEY, drop_connection
from seedance_pipeline.emulator.errors import ApiError
from seedance_pipeline.emulator.faults import FAULT_KINDS, FaultSpecError
from seedance_pipeline.emulator.files import StreamFileResponse
from seedance_pipeline.emulator.service import Emulator, FileError

REQUEST_ID_KEY = "emulator.request_id"
TASKS_PATH = "/api/v3/contents/generations/tasks"


def classify(method: str, path: str) -> str:
    """Operation name used in ``/_emulator/stats``."""
    if path.rstrip("/") == TASKS_PATH:
        return "create" if method == "POST" else "list"
    if path.startswith(TASKS_PATH + "/"):
        return {"GET": "get", "DELETE": "delete"}.get(method, "other")
    if path.startswith("/_emulator"):
        return "admin"
    if path.count("/") == 2 and path.endswith((".mp4", ".png")):
        return "file"
    return "other"


class NoResponse(Response):
    """Used after the connection was cut on purpose: nothing more to send."""

    def __init__(self) -> None:
        super().__init__(status_code=204)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return None


class EmulatorApp(Starlette):
    """Starlette app with request-id headers, request stats and raw-transport access."""

    emulator: Emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        em = self.emulator
        scope[RAW_SEND_KEY] = send
        scope[RAW_RECEIVE_KEY] = receive
        request_id = ids.request_id(em.clock.now())
        scope[REQUEST_ID_KEY] = request_id
        client_request_id = None
        for name, value in scope.get("headers", []):
            if name.lower() == b"x-client-request-id":
                client_request_id = value.decode("latin-1")
        status: int | None = None

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
                if client_request_id is not None:
                    headers["X-Client-Request-Id"] = client_request_id
            await send(message)

        try:
            await super().__call__(scope, receive, send_with_ids)
        finally:
            em.stats.record_request(
                classify(scope["method"], scope["path"]),
                status if status is not None else "dropped",
            )


def _emulator(request: Request) -> Emulator:
    app = request.app
    assert isinstance(app, EmulatorApp)
    return app.emulator


def _request_id(request: Request) -> str:
    return str(request.scope.get(REQUEST_ID_KEY, ""))


def _admin_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _json_body(request: Request) -> tuple[Any, str | None]:
    raw = await request.body()
    if not raw.strip():
        return None, "the body is empty"
    try:
        return json.loads(raw), None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, str(exc)


# -- provider routes ----------------------------------------------------------


async def create_task(request: Request) -> Response:
    em = _emulator(request)
    body, body_error = await _json_body(request)
    result = em.create(
        request.headers.get("authorization"),
        body,
        body_error,
        user_agent=request.headers.get("user-agent"),
        client_request_id=request.headers.get("x-client-request-id"),
    )
    if result.drop is not None:
        if await drop_connection(request.scope, result.drop):
            return NoResponse()
        raise RuntimeError("create fault: could not reach the transport to drop the connection")
    if result.delay > 0:
        await asyncio.sleep(result.delay)
    if result.raw is not None:
        return _raw(result.raw)
    return JSONResponse(result.body)


def _raw(answer: RawAnswer) -> Response:
    return Response(answer.content, status_code=answer.status, media_type=answer.media_type)


async def get_task(request: Request) -> Response:
    em = _emulator(request)
    task = em.get_task(request.headers.get("authorization"), request.path_params["task_id"])
    if isinstance(task, RawAnswer):
        return _raw(task)
    return JSONResponse(task)


async def list_tasks(request: Request) -> Response:
    em = _emulator(request)
    return JSONResponse(
        em.list_tasks(request.headers.get("authorization"), request.query_params.multi_items())
    )


async def delete_task(request: Request) -> Response:
    em = _emulator(request)
    return JSONResponse(
        em.delete_task(request.headers.get("authorization"), request.path_params["task_id"])
    )


async def get_file(request: Request) -> Response:
    em = _emulator(request)
    if request.path_params["prefix"].startswith("_") or request.path_params["prefix"] == "api":
        raise HTTPException(404, "Not Found")
    query = request.query_params
    answer = await em.open_file(
        request.url.path,
        query.get("X-Tos-Date"),
        query.get("X-Tos-Expires"),
        query.get("X-Tos-Signature"),
    )
    return StreamFileResponse(
        answer.path,
        answer.media_type,
        range_header=request.headers.get("range"),
        head=request.method == "HEAD",
        bytes_per_second=answer.bytes_per_second,
        truncate=answer.truncate_at,
    )


# -- admin routes ---------------------------------------------------------------


async def admin_get_faults(request: Request) -> Response:
    em = _emulator(request)
    return JSONResponse({"rules": em.faults.describe(), "kinds": list(FAULT_KINDS)})


async def admin_put_faults(request: Request) -> Response:
    em = _emulator(request)
    body, error = await _json_body(request)
    if error is not None:
        return _admin_error(400, "InvalidJSON", f"the fault set is not valid JSON: {error}")
    try:
        rules = em.set_faults(body)
    except FaultSpecError as exc:
        return _admin_error(400, "InvalidFaults", str(exc))
    return JSONResponse({"rules": rules})


async def admin_tasks(request: Request) -> Response:
    em = _emulator(request)
    tasks = em.admin_tasks()
    return JSONResponse({"total": len(tasks), "tasks": tasks})


async def admin_file_digest(request: Request) -> Response:
    em = _emulator(request)
    return JSONResponse(
        await em.file_digest(request.path_params["task_id"], request.path_params["name"])
    )


async def admin_stats(request: Request) -> Response:
    return JSONResponse(_emulator(request).admin_stats())


async def admin_capacity(request: Request) -> Response:
    raw = request.query_params.get("since", "0")
    try:
        since = float(raw)
    except ValueError:
        return _admin_error(400, "InvalidSince", "since must be a number (emulator seconds)")
    return JSONResponse(_emulator(request).admin_capacity(since))


async def admin_reset(request: Request) -> Response:
    _emulator(request).reset()
    return JSONResponse({})


async def admin_clock(request: Request) -> Response:
    em = _emulator(request)
    if request.method == "POST":
        body, error = await _json_body(request)
        seconds = body.get("advance_seconds") if isinstance(body, dict) else None
        if (
            error is not None
            or isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or seconds < 0
        ):
            return _admin_error(
                400, "InvalidClock", 'send {"advance_seconds": N} with a number N >= 0'
            )
        em.advance_clock(float(seconds))
    return JSONResponse({"now": em.clock.now(), "offset": em.clock.offset})


async def admin_callbacks(request: Request) -> Response:
    em = _emulator(request)
    return JSONResponse({"attempts": [a.to_json() for a in em.callbacks.log]})


async def admin_info(request: Request) -> Response:
    em = _emulator(request)
    return JSONResponse(
        {
            "status": "ok",
            "base_url": em.signer.base_url,
            "models": em.catalog.model_ids(),
            "fault_kinds": list(FAULT_KINDS),
            "config": em.config.model_dump(
                mode="json", exclude={"signing_secret", "faults", "api_keys"}
            ),
        }
    )


# -- error rendering ------------------------------------------------------------


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(_request_id(request)), status_code=exc.status, headers=exc.headers)


async def on_file_error(request: Request, exc: Exception) -> Response:
    """Object-store refusals in TOS's shape: a JSON body and `x-tos-request-id`."""
    assert isinstance(exc, FileError)
    rid = _request_id(request)
    body = {
        "Code": exc.code,
        "Message": exc.message,
        "RequestId": rid,
        "HostId": request.url.hostname or "",
    }
    return JSONResponse(body, status_code=exc.status, headers={"x-tos-request-id": rid})


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "BadRequest")
    err = ApiError(exc.status_code, code, f"{exc.detail}.", headers=dict(exc.headers or {}))
    return await on_api_error(request, err)


def create_app(
    config: EmulatorConfig | None = None, *, emulator: Emulator | None = None
) -> EmulatorApp:
    """Build the ASGI app. Its ``emulator`` attribute (also ``state.emulator``) holds all state."""
    em = emulator or Emulator(config or EmulatorConfig())

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await em.start()
        try:
            yield
        finally:
            await em.stop()

    routes = [
        Route(TASKS_PATH, create_task, methods=["POST"]),
        Route(TASKS_PATH, list_tasks, methods=["GET"]),
        Route(TASKS_PATH + "/{task_id}", get_task, methods=["GET"]),
        Route(TASKS_PATH + "/{task_id}", delete_task, methods=["DELETE"]),
        Route("/_emulator/faults", admin_get_faults, methods=["GET"]),
        Route("/_emulator/faults", admin_put_faults, methods=["PUT"]),
        Route("/_emulator/tasks", admin_tasks, methods=["GET"]),
        Route("/_emulator/tasks/{task_id}/files/{name}", admin_file_digest, methods=["GET"]),
        Route("/_emulator/stats", admin_stats, methods=["GET"]),
        Route("/_emulator/reset", admin_reset, methods=["POST"]),
        Route("/_emulator/clock", admin_clock, methods=["GET", "POST"]),
        Route("/_emulator/callbacks", admin_callbacks, methods=["GET"]),
        Route("/_emulator/info", admin_info, methods=["GET"]),
        Route("/_emulator/capacity", admin_capacity, methods=["GET"]),
        # Output files last: `/{model}/{object}`, the TOS path shape (signing.py).
        Route("/{prefix}/{name}", get_file, methods=["GET", "HEAD"]),
    ]
    app = EmulatorApp(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: on_api_error,
            FileError: on_file_error,
            HTTPException: on_http_error,
        },
    )
    app.emulator = em
    app.state.emulator = em
    return app
