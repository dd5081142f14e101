"""`python -m bench.moto_server --port P`: moto's S3 server mode in its own process.

moto is pure Python; run inside the harness it would share a GIL with the plain copy it
receives and make the baseline look slower than it is. In its own process it costs the
pipeline and the baseline the same.
"""

from __future__ import annotations

import argparse
import signal
import threading

from moto.server import ThreadedMotoServer


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.moto_server")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    print("moto.started", args.port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
