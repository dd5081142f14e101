"""Helpers for tests: run the emulator (or any ASGI app) on loopback in a thread.

``running_emulator`` is usable as ``with`` or ``async with``. It binds a free
loopback port itself (no race between picking and binding), starts uvicorn in a
daemon thread, waits until it accepts connections, and yields an
:class:`EmulatorHandle`: the base URL as a ``str`` that also carries the app,
the :class:`~emulator.service.Emulator` state object, the effective config and
convenience calls for the admin endpoints.

Admin calls go over HTTP (thread-safe). Code that must touch the state object
directly should use :meth:`EmulatorHandle.call`, which runs a function on the
server's event loop.

``callback_receiver`` runs a tiny recorder app the same way, for tests that need
a ``callback_url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from seedance_pipeline.emulator.app import EmulatorApp, create_app
from seedance_pipeline.emulator.config import EmulatorConfig
from seedance_pipeline.emulator.connection import bind_listening_socket
from seedance_pipeline.emulator.service import Emulator

T = TypeVar("T")
LOOPBACK = "127.0.0.1"


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Building an httpx client loads the CA bundle (~40 ms) unless it is handed a
    # ready context; tests create many short-lived clients, so share one.
    return ssl.create_default_context()


class ThreadedServer:
    """uvicorn serving an ASGI app on a pre-bound loopback socket in a daemon thread."""

    def __init__(
        self,
        app: ASGIApp,
        sock: socket.socket,
        *,
        log_level: str = "warning",
        startup_timeout: float = 10.0,
    ) -> None:
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        self.startup_timeout = startup_timeout
        config = uvicorn.Config(
            app,
            log_level=log_level,
            access_log=False,
            lifespan="on",
            loop="asyncio",
            http="h11",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=5,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name=f"uvicorn-{self.port}", daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            await self.server.serve(sockets=[self.sock])

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by start()
            self.error = exc

    def start(self) -> None:
        """Start and block until uvicorn is serving (or raise if it failed)."""
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server on port {self.port} did not start: {self.error!r}")
            time.sleep(0.005)

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread (at most a few seconds)."""
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        with contextlib.suppress(OSError):
            self.sock.close()

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn()`` on the server's event loop and return its result."""
        if self.loop is None:
            raise RuntimeError("server loop is not running")

        async def runner() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(runner(), self.loop).result(timeout)


class EmulatorHandle(str):
    """The emulator base URL (``http://127.0.0.1:<port>``) with handles attached."""

    app: EmulatorApp
    emulator: Emulator
    config: EmulatorConfig
    server: ThreadedServer

    def __new__(
        cls, url: str, app: EmulatorApp, config: EmulatorConfig, server: ThreadedServer
    ) -> EmulatorHandle:
        obj = super().__new__(cls, url)
        obj.app = app
        obj.emulator = app.emulator
        obj.config = config
        obj.server = server
        return obj

    @property
    def base_url(self) -> str:
        return str(self)

    @property
    def api_base(self) -> str:
        """``<base>/api/v3``, the provider base URL to give clients."""
        return f"{self}/api/v3"

    @property
    def tasks_url(self) -> str:
        return f"{self}/api/v3/contents/generations/tasks"

    @property
    def api_key(self) -> str:
        """The first accepted key (``ek-emulator-local`` unless configured)."""
        return self.config.api_keys[0]

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        """A sync httpx client for the provider API (base ``/api/v3``, Bearer key set)."""
        kwargs.setdefault("timeout", 10)
        return httpx.Client(
            base_url=self.api_base, headers=self.auth_headers, verify=_ssl_context(), **kwargs
        )

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An async httpx client for the provider API (base ``/api/v3``, Bearer key set)."""
        kwargs.setdefault("timeout", 10)
        return httpx.AsyncClient(
            base_url=self.api_base, headers=self.auth_headers, verify=_ssl_context(), **kwargs
        )

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on the emulator's event loop (safe access to ``emulator`` state)."""
        return self.server.call(fn)

    # -- admin endpoints, sync --------------------------------------------------

    def admin(self, method: str, path: str, json: Any = None) -> Any:
        """Call an admin endpoint (``path`` like ``/_emulator/stats``) and return its JSON."""
        with httpx.Client(base_url=str(self), timeout=10, verify=_ssl_context()) as client:
            resp = client.request(method, path, json=json)
        resp.raise_for_status()
        return resp.json()

    def set_faults(self, rules: list[dict[str, Any]]) -> Any:
        return self.admin("PUT", "/_emulator/faults", rules)

    def advance_clock(self, seconds: float) -> Any:
        return self.admin("POST", "/_emulator/clock", {"advance_seconds": seconds})

    def reset(self) -> Any:
        return self.admin("POST", "/_emulator/reset")

    def stats(self) -> Any:
        return self.admin("GET", "/_emulator/stats")

    def tasks(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "/_emulator/tasks")["tasks"])

    # -- admin endpoints, async -----------------------------------------------

    async def aadmin(self, method: str, path: str, json: Any = None) -> Any:
        """Async twin of :meth:`admin` (does not block the caller's event loop)."""
        async with httpx.AsyncClient(
            base_url=str(self), timeout=10, verify=_ssl_context()
        ) as client:
            resp = await client.request(method, path, json=json)
        resp.raise_for_status()
        return resp.json()

    async def aset_faults(self, rules: list[dict[str, Any]]) -> Any:
        return await self.aadmin("PUT", "/_emulator/faults", rules)

    async def aadvance_clock(self, seconds: float) -> Any:
        return await self.aadmin("POST", "/_emulator/clock", {"advance_seconds": seconds})

    async def areset(self) -> Any:
        return await self.aadmin("POST", "/_emulator/reset")

    async def astats(self) -> Any:
        return await self.aadmin("GET", "/_emulator/stats")

    async def atasks(self) -> list[dict[str, Any]]:
        return list((await self.aadmin("GET", "/_emulator/tasks"))["tasks"])


class running_emulator:
    """Run the emulator on a free loopback port; ``with``/``async with`` yields the handle.

    ``config`` defaults to :class:`EmulatorConfig` defaults; keyword overrides are
    applied on top (e.g. ``queue_seconds=0.05``). The port is always chosen
    freshly unless ``port`` is given.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        port: int = 0,
        log_level: str = "warning",
        **overrides: Any,
    ) -> None:
        self._base = config or EmulatorConfig()
        self._port = port
        self._log_level = log_level
        self._overrides = overrides
        self._server: ThreadedServer | None = None
        self.handle: EmulatorHandle | None = None

    def _start(self) -> EmulatorHandle:
        sock = bind_listening_socket(LOOPBACK, self._port)
        port = int(sock.getsockname()[1])
        values = {name: getattr(self._base, name) for name in EmulatorConfig.model_fields}
        values.update(self._overrides)
        values.update(host=LOOPBACK, port=port)
        config = EmulatorConfig.model_validate(values)
        app = create_app(config)
        server = ThreadedServer(app, sock, log_level=self._log_level)
        server.start()
        self._server = server
        self.handle = EmulatorHandle(f"http://{LOOPBACK}:{port}", app, config, server)
        return self.handle

    def _stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> EmulatorHandle:
        return self._start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    async def __aenter__(self) -> EmulatorHandle:
        return await asyncio.to_thread(self._start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self._stop)


# -- callback receiver ------------------------------------------------------------


@dataclass
class ReceivedCallback:
    """One POST seen by the receiver."""

    path: str
    body: Any
    at: float
    status_returned: int


@dataclass
class CallbackReceiver:
    """Records POSTs on any path; answers with scripted statuses (default 200)."""

    url: str = ""
    received: list[ReceivedCallback] = field(default_factory=list)
    scripts: dict[str | None, list[int]] = field(default_factory=dict)
    delay: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def respond_with(self, *statuses: int, for_status: str | None = None) -> None:
        """Answer the next POSTs with these HTTP statuses, in order, then 200 again.

        With ``for_status`` (e.g. ``"succeeded"``) the script only applies to
        callbacks whose body has that task status.
        """
        with self._lock:
            self.scripts[for_status] = list(statuses)

    def _next_status(self, body: Any) -> int:
        task_status = body.get("status") if isinstance(body, dict) else None
        with self._lock:
            for key in (task_status, None):
                script = self.scripts.get(key)
                if script:
                    return script.pop(0)
        return 200

    def snapshot(self, path: str | None = None) -> list[ReceivedCallback]:
        with self._lock:
            return [r for r in self.received if path is None or r.path == path]

    def wait_for(
        self,
        predicate: Callable[[list[ReceivedCallback]], bool],
        timeout: float = 5.0,
        path: str | None = None,
    ) -> list[ReceivedCallback]:
        """Poll until ``predicate(received)`` holds; raise TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.snapshot(path)
            if predicate(got):
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"callback condition not met; got {len(got)} callbacks")
            time.sleep(0.01)

    async def await_for(
        self,
        predicate: Callable[[list[ReceivedCallback]], bool],
        within: float = 5.0,
        path: str | None = None,
    ) -> list[ReceivedCallback]:
        """Async twin of :meth:`wait_for` (``within`` seconds)."""
        deadline = time.monotonic() + within
        while True:
            got = self.snapshot(path)
            if predicate(got):
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"callback condition not met; got {len(got)} callbacks")
            await asyncio.sleep(0.01)

    def app(self) -> Starlette:
        async def record(request: Request) -> Response:
            raw = await request.body()
            try:
                body: Any = await request.json() if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            status = self._next_status(body)
            if self.delay:
                await asyncio.sleep(self.delay)
            with self._lock:
                self.received.append(ReceivedCallback(request.url.path, body, time.time(), status))
            return JSONResponse({"ok": status < 300}, status_code=status)

        return Starlette(routes=[Route("/{path:path}", record, methods=["POST"])])


@contextlib.contextmanager
def callback_receiver() -> Iterator[CallbackReceiver]:
    """Run a :class:`CallbackReceiver` on a free loopback port in a thread."""
    receiver = CallbackReceiver()
    sock = bind_listening_socket(LOOPBACK, 0)
    server = ThreadedServer(receiver.app(), sock)
    server.start()
    receiver.url = f"http://{LOOPBACK}:{server.port}"
    try:
        yield receiver
    finally:
        server.stop()
