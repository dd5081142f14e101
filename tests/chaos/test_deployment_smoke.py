"""The deployment users run, in the chaos smoke: two workers on S3 (moto server) and the
Postgres ledger, with worker SIGKILLs, a Temporal restart and a Postgres restart, through the
same harness as `make chaos`; every invariant, the paid-work ones included, holds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chaos.invariants import INVARIANTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("chaos-deployment")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaos",
            "--smoke",
            "--only",
            "deployment",
            "--results",
            str(out / "smoke.json"),
            "--doc",
            str(out / "smoke.md"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads((out / "smoke.json").read_text()), (out / "smoke.md").read_text()


def test_two_workers_s3_and_postgres_hold_every_invariant(run: tuple[dict[str, Any], str]) -> None:
    (scenario,) = run[0]["scenarios"]
    assert scenario["key"] == "deployment" and scenario["error"] is None
    assert scenario["deployment"] == "2 workers, S3 (moto server), Postgres ledger, callbacks"
    assert set(scenario["invariants"]) == set(INVARIANTS)
    assert all(i["holds"] for i in scenario["invariants"].values()), scenario["invariants"]
    assert scenario["outcomes"].get("succeeded", 0) >= 5


def test_the_restarts_and_kills_really_happened(run: tuple[dict[str, Any], str]) -> None:
    (scenario,) = run[0]["scenarios"]
    faults = scenario["faults"]
    assert faults["worker_sigkill"] == 2
    assert faults["temporal_restart"] == 1 and faults["postgres_restart"] == 1
    assert {k["worker"] for k in scenario["kills"]} <= {"worker", "worker-2"}


def test_the_money_matches_to_the_cent_and_the_report_says_what_was_injected(
    run: tuple[dict[str, Any], str],
) -> None:
    (scenario,) = run[0]["scenarios"]
    usd = scenario["money"]["USD"]
    assert usd["billed"] > 0 and round(usd["billed"], 2) == round(usd["recorded"], 2)
    md = run[1]
    assert "| deployment | 2 workers, S3 (moto server), Postgres ledger, callbacks |" in md
    assert "Postgres stopped at t+6s for 3s" in md
    assert "| no multipart upload left open in the bucket | holds (0 violations) |" in md
