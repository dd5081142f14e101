"""`python -m webhook --port 8701 [--host 127.0.0.1]`: serve the callback receiver.

Refuses to start without the callback secret: a receiver that cannot check tokens would either
accept forged callbacks or refuse every real one, and both are worse than not starting.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import structlog
import uvicorn

from seedance_pipeline.clients.temporal_client import connect
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.settings import ConfigError
from seedance_pipeline.observability.logging import configure_logging, secret_values
from seedance_pipeline.webhook.app import DEFAULT_MAX_BODY_BYTES, create_app

log = structlog.get_logger("webhook")


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m webhook", description="Seedance callback receiver (signals job workflows)."
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("WEBHOOK_HOST", "127.0.0.1"),
        help="address to bind (env WEBHOOK_HOST, default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=os.environ.get("WEBHOOK_PORT", "8701"),
        help="port to bind (env WEBHOOK_PORT, default 8701)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=os.environ.get("WEBHOOK_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES)),
        help=f"largest accepted callback body (env WEBHOOK_MAX_BODY_BYTES, "
        f"default {DEFAULT_MAX_BODY_BYTES})",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("WEBHOOK_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        help="env WEBHOOK_LOG_LEVEL, default info",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    configure_logging(level=args.log_level, library_level=args.log_level)
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"webhook: {exc}\n")
        return 2
    configure_logging(settings, level=args.log_level, library_level=args.log_level)
    secret = settings.callbacks.secret()
    if not secret:
        sys.stderr.write(
            f"webhook: refusing to start: the callback secret is empty. Set "
            f"{settings.callbacks.secret_env} to the secret the worker signs callback URLs "
            f"with (the same value on both).\n"
        )
        return 2
    if args.max_body_bytes <= 0:
        sys.stderr.write("webhook: --max-body-bytes must be positive\n")
        return 2
    app = create_app(
        client_factory=connect,
        secret=secret,
        max_body_bytes=args.max_body_bytes,
        redact=lambda: secret_values(settings),
    )
    log.info("webhook_starting", host=args.host, port=args.port)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,  # keep our structlog handlers
        access_log=False,  # an access line would print the callback path, i.e. the token
        server_header=False,
        lifespan="off",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
