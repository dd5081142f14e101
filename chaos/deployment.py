"""The deployment a scenario runs on: how many workers, which storage, which ledger.

The embedded stack's default is one worker, a directory and a SQLite file; what users run in
production is several workers on S3 and a shared Postgres ledger. `Deployment` says which, and
`Services` runs the parts it needs for the whole chaos run: moto's S3 server in its own process
(`bench/moto_server.py`) with one bucket, and a private PostgreSQL server
(`seedance_pipeline/stack/postgres.py`) that can be stopped and started again on the same port.
Evidence reads the same places back (`chaos.stored`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from bench.procs import Proc
from seedance_pipeline.stack import postgres as pg
from seedance_pipeline.stack.ports import free_port

BUCKET = "chaos-outputs"
PREFIX = "videos"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "chaos",
    "AWS_SECRET_ACCESS_KEY": "chaos",  # moto accepts any credentials
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class Deployment:
    workers: int = 1
    storage: Literal["file", "s3"] = "file"
    ledger: Literal["sqlite", "postgres"] = "sqlite"
    callbacks: bool = True

    def describe(self) -> str:
        parts = [
            f"{self.workers} worker{'s' if self.workers != 1 else ''}",
            "S3 (moto server)" if self.storage == "s3" else "file storage",
            "Postgres ledger" if self.ledger == "postgres" else "SQLite ledger",
            "callbacks" if self.callbacks else "polling only",
        ]
        return ", ".join(parts)


@dataclass
class Services:
    """moto and Postgres for the run, started on first need, stopped at the end."""

    data: Path
    src: Path
    """The run's snapshot of the source tree (children run from it)."""
    sqlite_url: str
    s3_port: int | None = None
    s3_proc: Proc | None = None
    pg_dir: Path | None = None
    pg_server: pg.Server | None = None

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def ensure(self, deployment: Deployment) -> None:
        if deployment.storage == "s3" and self.s3_proc is None:
            self._start_s3()
        if deployment.ledger == "postgres" and self.pg_server is None:
            pg.ensure_installed()
            # Its own temp directory: the server runs as the `postgres` user when we are root,
            # and that user cannot enter the run's private data directory.
            self.pg_dir = Path(tempfile.mkdtemp(prefix="seedance-chaos-pg-"))
            self.pg_server = pg.start(self.pg_dir)

    def _start_s3(self) -> None:
        self.s3_port = free_port()
        argv = [sys.executable, "-m", "bench.moto_server", "--port", str(self.s3_port)]
        log = self.data / "logs" / "moto.log"
        self.s3_proc = Proc("moto", argv, {**_env(), **AWS_ENV}, log, self.src)
        self.s3_proc.start()
        self.s3_proc.wait_ready(lambda: _http_up(f"{self.s3_endpoint}/moto-api/"))
        self.s3_client().create_bucket(Bucket=BUCKET)

    def s3_client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name=AWS_ENV["AWS_DEFAULT_REGION"],
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        )

    def ledger_url(self, deployment: Deployment) -> str:
        if deployment.ledger == "postgres":
            if self.pg_server is None:
                raise RuntimeError("Postgres not started: call ensure() first")
            return self.pg_server.url
        return self.sqlite_url

    def storage_uri(self, deployment: Deployment, outputs: Path) -> str:
        return f"s3://{BUCKET}/{PREFIX}" if deployment.storage == "s3" else str(outputs)

    def worker_env(self, deployment: Deployment) -> dict[str, str]:
        """What a worker of this deployment needs on top of the stack's environment."""
        env = {"SEEDANCE_LEDGER__URL": self.ledger_url(deployment)}
        if deployment.storage == "s3":
            env |= AWS_ENV | {
                "SEEDANCE_STORAGE__URI": f"s3://{BUCKET}/{PREFIX}",
                "SEEDANCE_STORAGE__S3_ENDPOINT_URL": self.s3_endpoint,
            }
        return env

    def stop_postgres(self) -> None:
        if self.pg_dir is not None:
            pg.stop(self.pg_dir)

    def start_postgres_again(self) -> None:
        """Same data directory and port: the workers' connections come back by themselves."""
        if self.pg_dir is None or self.pg_server is None:
            raise RuntimeError("Postgres was never started")
        self.pg_server = pg.start(self.pg_dir, port=self.pg_server.port)

    def stop(self) -> None:
        if self.s3_proc is not None:
            self.s3_proc.stop()
            self.s3_proc = None
        if self.pg_dir is not None:
            with contextlib.suppress(pg.PostgresUnavailable, OSError):
                pg.stop(self.pg_dir)
            shutil.rmtree(self.pg_dir, ignore_errors=True)
            self.pg_dir = self.pg_server = None


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("EMULATOR_", "TEMPORAL_"))}


def _http_up(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.HTTPError:
        time.sleep(0.05)
        return False
    return True
