"""The cuttable proxy: relays bytes both ways, a cut resets open connections (the client sees
a reset, not a clean close), new connections are refused while it is down, and it comes back
by itself."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from chaos.proxy import CuttableProxy
from seedance_pipeline.stack.ports import free_port


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A tiny echo server on loopback (one thread per connection)."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(ConnectionResetError):  # the proxy's cut resets us too
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join(2)
    server.close()


@pytest.fixture
def proxy(echo_port: int) -> Iterator[CuttableProxy]:
    p = CuttableProxy("127.0.0.1", echo_port, free_port())
    p.start()
    yield p
    p.stop()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.settimeout(5)
    return sock


def test_relays_both_ways(proxy: CuttableProxy) -> None:
    with _connect(proxy.port) as sock:
        payload = b"x" * 200_000
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += sock.recv(65536)
        assert got == payload
    assert proxy.counters.connections_relayed == 1


def test_cut_resets_open_connections_then_refuses_then_recovers(proxy: CuttableProxy) -> None:
    sock = _connect(proxy.port)
    sock.sendall(b"ping")
    assert sock.recv(16) == b"ping"
    assert proxy.cut(1.0) == 1
    with pytest.raises(ConnectionResetError):
        sock.sendall(b"again")
        if sock.recv(16) == b"":  # a FIN would read as b"": not what a cut does
            pytest.fail("the cut closed the connection cleanly instead of resetting it")
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        _connect(proxy.port)
    time.sleep(1.3)
    with _connect(proxy.port) as again:
        again.sendall(b"back")
        assert again.recv(16) == b"back"
    assert proxy.counters.cuts == 1
    assert proxy.counters.connections_reset == 1
