"""Ledger fixtures: every store test runs on SQLite and on a real PostgreSQL server.

The server is found or started once per session: `SEEDANCE_TEST_POSTGRES_URL` if set, else
the one `make pg-up` left running, else a private one in a temp directory (installed first
with apt when the binaries are missing and we are root), stopped at the end. Each test gets
its own database, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from seedance_pipeline.adapters.ledger import open_ledger
from seedance_pipeline.adapters.ledger_schema import Ledger
from seedance_pipeline.stack import postgres as pg


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a PostgreSQL database we may create databases from."""
    url = os.environ.get("SEEDANCE_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    pg.ensure_installed()
    shared = pg.running(pg.shared_dir())
    if shared is not None:
        yield shared.url
        return
    with pg.temporary_server() as server:
        yield server.url


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@pytest.fixture
def pg_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    try:
        yield _with_database(postgres_server, name)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'ledger.sqlite3'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    store = open_ledger(ledger_url)
    try:
        yield store
    finally:
        store.close()
