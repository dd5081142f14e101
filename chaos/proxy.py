"""A loopback TCP proxy whose network path can be cut: the "connection resets" fault.

The worker's provider base URL (and the emulator's public file URL) point here, and every byte
is relayed to the emulator. `cut(seconds)` resets every open connection (RST, not a polite FIN)
and stops listening, so new connections are refused until the path comes back on its own.
The emulator is left alone: the fault is in the network, where it happens in production.

It runs on its own event loop in a daemon thread, so the harness blocking on a child process
(a worker restart, a Temporal restart) never stalls traffic that is meant to flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from dataclasses import dataclass

CHUNK = 64 * 1024


@dataclass
class ProxyCounters:
    cuts: int = 0
    connections_reset: int = 0
    """Open connections reset by a cut (the worker saw each as a reset)."""
    connections_relayed: int = 0


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST: SO_LINGER on, zero timeout, then abort."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


class CuttableProxy:
    """127.0.0.1:`port` -> `target_host`:`target_port`, with `cut()` and counters."""

    def __init__(self, target_host: str, target_port: int, port: int) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self.counters = ProxyCounters()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="proxy")
        self._server: asyncio.Server | None = None
        self._open: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._restore: asyncio.TimerHandle | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def listening(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def shutdown() -> None:
            self._stop_listening()
            for pair in list(self._open):
                for writer in pair:
                    writer.transport.abort()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def cut(self, seconds: float) -> int:
        """Reset every open connection and refuse new ones for `seconds`; returns how many
        connections were reset."""

        async def do_cut() -> int:
            self.counters.cuts += 1
            self._stop_listening()
            reset = 0
            for client, upstream in list(self._open):
                _reset(client)
                _reset(upstream)
                reset += 1
            self._open.clear()
            self.counters.connections_reset += reset
            if self._restore is not None:
                self._restore.cancel()
            self._restore = self._loop.call_later(
                seconds, lambda: self._loop.create_task(self._listen())
            )
            return reset

        return asyncio.run_coroutine_threadsafe(do_cut(), self._loop).result(10)

    def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _listen(self) -> None:
        self._restore = None
        if self._server is None:
            self._server = await asyncio.start_server(
                self._handle, "127.0.0.1", self.port, reuse_address=True
            )

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._server is None:  # accepted just as a cut began
            _reset(client_w)
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(client_w)
            return
        pair = (client_w, up_w)
        self._open.add(pair)
        self.counters.connections_relayed += 1
        try:
            await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))
        finally:
            if pair in self._open:
                self._open.discard(pair)
                for writer in pair:
                    writer.close()
