"""`python -m seedance_pipeline.api [--host H] [--port P]`: serve the HTTP API;
`python -m seedance_pipeline.api keygen`: print a new API key and the hash to configure."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import uvicorn

from seedance_pipeline.api.app import create_app
from seedance_pipeline.api.keys import hash_key, new_key
from seedance_pipeline.clients.temporal_client import connect
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.settings import ConfigError
from seedance_pipeline.core.standard_webhooks import new_secret
from seedance_pipeline.observability.logging import configure_logging


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m seedance_pipeline.api")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "keygen"])
    parser.add_argument("--host", default=os.environ.get("API_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("API_PORT", "8702")))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    if args.command == "keygen":
        key = new_key()
        print(f"api key (give it to the application): {key}")  # noqa: T201
        print(f"hash (put it in key_hashes_env / key_hashes_file): {hash_key(key)}")  # noqa: T201
        print(f"webhook secret (webhook_secret_env / _file): {new_secret()}")  # noqa: T201
        return 0
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"api: {exc}\n")
        return 2
    configure_logging(settings)
    if not settings.api.tenants:
        sys.stderr.write(
            "api: warning: no tenant is configured (api.tenants): every call will be 401\n"
        )
    os.environ.setdefault("API_PORT", str(args.port))
    app = create_app(settings, client_factory=connect)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
