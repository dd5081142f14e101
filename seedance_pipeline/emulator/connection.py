"""Cutting a client's connection from inside an ASGI app.

Faults such as ``create_drop`` and ``truncated_download`` need the client to
see a dead socket, not an HTTP error. ASGI has no "close the connection" event,
so the app stashes the server's own ``send`` callable in the scope (see
``app.EmulatorApp``); under uvicorn it is a bound method of the request cycle,
whose ``transport`` we close (flushing what was written) or abort (TCP reset).

After closing we wait for the server to notice the disconnect before the app
returns; otherwise uvicorn would try to write a 500 onto the dead socket and log
an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, Literal

from starlette.types import Receive, Scope

RAW_SEND_KEY = "emulator.raw_send"
RAW_RECEIVE_KEY = "emulator.raw_receive"
DROPPED_KEY = "emulator.dropped"
DISCONNECT_WAIT_SECONDS = 5.0


def _transport(scope: Scope) -> asyncio.BaseTransport | None:
    raw_send: Any = scope.get(RAW_SEND_KEY)
    owner = getattr(raw_send, "__self__", None)
    transport = getattr(owner, "transport", None)
    return transport if isinstance(transport, asyncio.BaseTransport) else None


async def _await_disconnect(receive: Receive) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DISCONNECT_WAIT_SECONDS):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return


async def drop_connection(scope: Scope, mode: Literal["close", "reset"] = "close") -> bool:
    """Close (FIN after flushing) or reset (RST) the client connection.

    Returns False when the server does not expose its transport; the caller
    should then fall back to raising mid-response.
    """
    transport = _transport(scope)
    if transport is None:
        return False
    scope[DROPPED_KEY] = True
    if mode == "reset" and isinstance(transport, asyncio.Transport):
        transport.abort()
    else:
        transport.close()
    receive: Receive | None = scope.get(RAW_RECEIVE_KEY)
    if receive is not None:
        await _await_disconnect(receive)
    return True


def bind_listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; binding it ourselves lets ``port=0`` pick a free port
    with no race between choosing and binding, and tells us the real port.

    ``proto`` must be IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on
    accepted sockets whose proto says TCP, and without it every response pays a
    40 ms Nagle/delayed-ACK stall.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
