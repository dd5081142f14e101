"""structlog everywhere outside workflow code (workflows use `workflow.logger`).

JSON lines when stderr is not a TTY, readable console output on a TTY. A redaction processor
replaces every configured secret (route API keys, the callback secret) wherever it appears in
an event, so a key pasted into an error message still never reaches a log line.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from seedance_pipeline.core.settings import Settings

REDACTED = "[REDACTED]"


def secret_values(settings: Settings) -> list[str]:
    names = [r.api_key_env for r in settings.routes.values()] + [settings.callbacks.secret_env]
    names.append(settings.api.session_secret_env)
    values = [os.environ.get(n, "") for n in names]
    # Tenants' webhook secrets (an API key is never in settings: only its hash is).
    values += [t.webhook_secret() or "" for t in settings.api.tenants.values()]
    return [v for v in values if len(v) >= 6]


def scrub_bytes(raw: bytes, secrets: Iterable[str]) -> bytes:
    """`raw` with every secret (UTF-8, longest first) replaced by REDACTED: for answers from
    outside (provider bodies, callbacks) before they are parsed into anything stored."""
    for secret in sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True):
        needle = secret.encode()
        if needle in raw:
            raw = raw.replace(needle, REDACTED.encode())
    return raw


class RedactSecrets:
    """A structlog processor that scrubs known secret values from every string in an event."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted(set(secrets), key=len, reverse=True)

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._scrub(v) for v in value)
        return value

    def __call__(
        self, logger: Any, name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        return {k: self._scrub(v) for k, v in event.items()}


def configure_logging(settings: Settings, level: str | None = None) -> None:
    level_name = (level or os.environ.get("LOG_LEVEL", "INFO")).upper()
    renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            RedactSecrets(secret_values(settings)),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level_name, logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
