"""One logging setup for every process (worker, webhook receiver, CLI): structlog outside
workflow code (workflows use `workflow.logger`), and the standard library's records (uvicorn,
the SDK) rendered by the same processors, so every line has one shape.

JSON lines when stderr is not a TTY, readable console output on a TTY. Two redactions run on
every event, chained: keys that could carry a secret (`token`, `authorization`, `headers`,
and `path`/`url`, since a callback path carries its token) are replaced whatever their value,
and every configured secret value (route API keys, the callback secret) is replaced wherever
it appears, so a key pasted into an error message still never reaches a log line.
Tracebacks are rendered plain: rich and structlog's dict tracebacks print local variables,
which would include the secret and the token.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from seedance_pipeline.core.settings import Settings

REDACTED = "[REDACTED]"
REDACTED_KEYS = frozenset(
    {"token", "mac", "secret", "authorization", "headers", "cookie", "api_key", "path", "url"}
)
"""`path`/`url` too: a callback path carries the token."""


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


def redact_keys(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    for key in event_dict:
        if key.lower() in REDACTED_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(
    settings: Settings | None = None,
    *,
    level: str | None = None,
    library_level: str = "warning",
    json_lines: bool | None = None,
) -> None:
    """Every process calls this once at start. `level` filters our events (default LOG_LEVEL
    or INFO), `library_level` the standard library's loggers (uvicorn, the SDK)."""
    level_name = (level or os.environ.get("LOG_LEVEL", "INFO")).upper()
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    redactions: list[Processor] = [
        redact_keys,
        RedactSecrets(secret_values(settings) if settings else []),
    ]
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        *redactions,
    ]
    renderer: list[Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if json_lines
        else [structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)]
    )
    structlog.configure(
        processors=[*shared, *renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level_name, logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(library_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
