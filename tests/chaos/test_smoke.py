"""The reduced chaos suite inside `make test`: one process-fault scenario (worker SIGKILLs,
with the ledger lock) and one provider storm (5xx, ambiguous creates, 429 bursts) with a few
jobs each, through the same harness, runner and invariant code as `make chaos`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ["worker-kills", "create-storm"]
INVARIANT_KEYS = {
    "terminal_within_deadline",
    "one_billed_task_per_job",
    "succeeded_jobs_complete",
    "no_orphan_ledger_rows",
    "states_only_forward",
    "billed_tasks_recorded",
    "billed_videos_stored",
    "money_recorded_equals_billed",
    "no_open_multipart_uploads",
    "no_slot_leaked",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("chaos-smoke")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaos",
            "--smoke",
            "--only",
            ",".join(SCENARIOS),
            "--results",
            str(out / "smoke.json"),
            "--doc",
            str(out / "smoke.md"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads((out / "smoke.json").read_text()), (out / "smoke.md").read_text()


def _scenario(result: dict[str, Any], key: str) -> dict[str, Any]:
    (found,) = [s for s in result["scenarios"] if s["key"] == key]
    assert found["error"] is None, found["error"]
    return found


def test_every_invariant_was_checked_and_holds(run: tuple[dict[str, Any], str]) -> None:
    result, _ = run
    assert [s["key"] for s in result["scenarios"]] == SCENARIOS
    for scenario in result["scenarios"]:
        assert set(scenario["invariants"]) == INVARIANT_KEYS
        assert all(i["holds"] and i["violations"] == 0 for i in scenario["invariants"].values())
        assert scenario["holds"] is True
        assert scenario["jobs_lost"] == scenario["duplicate_billed"] == scenario["mismatched"] == 0
        assert sum(scenario["outcomes"].values()) == scenario["jobs"] == 6
    assert result["totals"]["invariants_hold"] is True


def test_worker_kills_were_real_and_recorded(run: tuple[dict[str, Any], str]) -> None:
    kills = _scenario(run[0], "worker-kills")
    assert kills["faults"]["worker_sigkill"] == 2
    assert [k["mode"] for k in kills["kills"]] == ["random", "ledger-lock"]
    for kill in kills["kills"]:
        assert kill["restart_seconds"] > 0
        assert kill["jobs_running"] == sum(kill["job_states"].values())
    assert kills["outcomes"].get("succeeded", 0) >= 5


def test_provider_storm_faults_come_from_the_emulator_counters(
    run: tuple[dict[str, Any], str],
) -> None:
    storm = _scenario(run[0], "create-storm")
    faults = storm["faults"]
    assert faults.get("provider:create_5xx", 0) + faults.get("provider:create_429", 0) > 0
    assert all(k.startswith("provider:") for k in faults)
    # Each job billed at most once even though creates were refused or ambiguous.
    assert storm["billed_tasks"] <= storm["jobs"]
    assert storm["provider_tasks"] >= storm["billed_tasks"]


def test_markdown_has_a_table_per_scenario_and_the_figures(
    run: tuple[dict[str, Any], str],
) -> None:
    _, md = run
    assert "**Every invariant holds: yes.**" in md
    for figure in ("jobs run", "faults injected", "jobs lost", "duplicate billed tasks"):
        assert re.search(rf"\| {figure} \| \d+ \|", md), figure
    assert "| mismatched records | 0 |" in md
    for key in SCENARIOS:
        assert f"### {key}:" in md
    assert "| # | at | mode | running jobs |" in md


def test_makefile_target_runs_the_full_chaos_command() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^chaos:.*\n\t.+python -m chaos$", makefile, re.MULTILINE)
