"""Command line: ``python -m emulator --port 8700 [options]``.

Flags override ``EMULATOR_*`` environment variables, which override defaults
(see README). The listening socket is bound here so ``--port 0`` works and the
printed/public URL always names the real port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import uvicorn

from seedance_pipeline.emulator.app import create_app
from seedance_pipeline.emulator.config import build_config, load_faults_file
from seedance_pipeline.emulator.connection import bind_listening_socket
from seedance_pipeline.emulator.faults import FaultSpecError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m emulator",
        description="BytePlus ModelArk / Volcengine Ark Seedance emulator",
    )
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default 8700; 0 = any free port)")
    p.add_argument("--public-url", help="base URL used in video_url (default http://host:port)")
    p.add_argument("--api-keys", help="comma-separated accepted Bearer keys")
    p.add_argument("--faults", type=Path, help="JSON file with fault rules to load at start")
    p.add_argument("--queue-seconds", type=float, help="seconds a task stays queued")
    p.add_argument("--run-seconds", type=float, help="seconds a task stays running")
    p.add_argument("--jitter", type=float, help="+/- fraction applied to queue/run seconds")
    p.add_argument("--url-ttl", type=int, help="video_url lifetime in seconds (default 86400)")
    p.add_argument("--data-dir", type=Path, help="where generated media is cached (DIR/media)")
    p.add_argument("--media-dir", type=Path, help="the media cache itself, if not DIR/media")
    p.add_argument(
        "--account",
        choices=["enterprise", "individual"],
        help="published limits preset: enterprise 10 running / 600 RPM per model (default), "
        "individual 3 / 180; 120 queued per account either way",
    )
    p.add_argument(
        "--unlimited",
        action="store_true",
        default=None,
        help="no limits unless given below (a provider without limits: say why you need it)",
    )
    p.add_argument("--concurrency", type=int, help="tasks running per model (0 = no limit)")
    p.add_argument("--rpm", type=int, help="creates per minute per model (0 = no limit)")
    p.add_argument("--max-queued", type=int, help="tasks queued per account (0 = no limit)")
    p.add_argument(
        "--retry-after",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send Retry-After on limit 429s (default: not sent; real behaviour unknown)",
    )
    p.add_argument("--retention-hours", type=float, help="query window (default 24)")
    p.add_argument(
        "--tos-urls",
        action="store_true",
        default=None,
        help="serve file URLs on the regions' TOS host names (the client maps them here)",
    )
    p.add_argument("--min-video-bytes", type=int, help="pad MP4s to at least this size")
    p.add_argument(
        "--plus-one-frame",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bill 24*d+1 frames (default on)",
    )
    p.add_argument("--callback-timeout", type=float, help="seconds to wait for a 2xx")
    p.add_argument("--callback-retries", type=int, help="retries for terminal callbacks")
    p.add_argument("--callback-retry-interval", type=float, help="seconds between retries")
    p.add_argument(
        "--model-timings", help='JSON {"model-id": {"queue_seconds": .., "run_seconds": ..}}'
    )
    p.add_argument("--log-level", help="uvicorn log level (default info)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "public_url": args.public_url,
        "api_keys": args.api_keys.split(",") if args.api_keys else None,
        "queue_seconds": args.queue_seconds,
        "run_seconds": args.run_seconds,
        "jitter": args.jitter,
        "url_ttl": args.url_ttl,
        "data_dir": args.data_dir,
        "media_dir": args.media_dir,
        "account": args.account,
        "unlimited": args.unlimited,
        "concurrency_per_model": args.concurrency,
        "rpm_per_model": args.rpm,
        "queued_per_account": args.max_queued,
        "retry_after": args.retry_after,
        "retention_hours": args.retention_hours,
        "tos_urls": args.tos_urls,
        "min_video_bytes": args.min_video_bytes,
        "plus_one_frame": args.plus_one_frame,
        "callback_timeout": args.callback_timeout,
        "callback_retries": args.callback_retries,
        "callback_retry_interval": args.callback_retry_interval,
        "model_timings": json.loads(args.model_timings) if args.model_timings else None,
        "log_level": args.log_level,
    }
    try:
        if args.faults is not None:
            overrides["faults"] = load_faults_file(args.faults)
        config = build_config(os.environ, overrides)
    except (FaultSpecError, ValueError, OSError) as exc:
        print(f"emulator: bad configuration: {exc}", file=sys.stderr)  # noqa: T201
        return 2

    sock = bind_listening_socket(config.host, config.port)
    config.port = int(sock.getsockname()[1])
    app = create_app(config)
    limits = config.limits()
    print(  # noqa: T201
        f"ModelArk emulator on {config.base_url()}/api/v3 "
        f"(keys: {', '.join(config.api_keys)}; data: {config.data_dir}; "
        f"limits: {limits.concurrency_per_model or 'no'} running / "
        f"{limits.rpm_per_model or 'no'} RPM per model, "
        f"{limits.queued_per_account or 'no'} queued per account)",
        flush=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(app, log_level=config.log_level, loop="asyncio", http="h11", lifespan="on")
    )
    asyncio.run(server.serve(sockets=[sock]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
