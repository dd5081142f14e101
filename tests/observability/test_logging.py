"""One logging setup for worker, receiver and CLI: both redactions on every line, whether it
comes from structlog or from a standard-library logger such as uvicorn's."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import pytest
import structlog

from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.observability.logging import REDACTED, configure_logging

KEY = "ek-logging-test-key-123456"


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Called inside the test, once capsys holds stderr: loggers keep the stream they got."""
    monkeypatch.setenv("ARK_API_KEY", KEY)
    yield lambda: configure_logging(
        load_settings(), level="info", library_level="info", json_lines=True
    )
    structlog.reset_defaults()
    logging.getLogger().handlers = []


def lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_both_redactions_apply_to_structlog_events(
    configure: Callable[[], None], capsys: pytest.CaptureFixture[str]
) -> None:
    configure()
    structlog.get_logger("t").info("oops", detail=f"Bearer {KEY}", token="t0ken", job_id="j1")
    [event] = lines(capsys.readouterr().err)
    assert event["job_id"] == "j1" and event["level"] == "info"
    assert event["detail"] == f"Bearer {REDACTED}" and event["token"] == "[redacted]"


def test_library_records_get_the_same_shape_and_redactions(
    configure: Callable[[], None], capsys: pytest.CaptureFixture[str]
) -> None:
    configure()
    logging.getLogger("uvicorn.error").warning("could not bind with key %s", KEY)
    [event] = lines(capsys.readouterr().err)
    assert event["logger"] == "uvicorn.error" and event["level"] == "warning"
    assert KEY not in json.dumps(event) and REDACTED in str(event["event"])
