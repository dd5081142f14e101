"""`make bench-smoke` end to end: the whole harness on a private stack with a few jobs per
scenario. It checks that every scenario ran, every job succeeded, files were written and every
figure has its same-run baseline and ratio; targets are findings of the full run, not asserted.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from seedance_pipeline.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SMOKE_TIMEOUT_SECONDS = 240
"""A hung harness fails here. The smoke takes about 80 s on a quiet two-core box, and that is a
speed figure: it is reported (each scenario's and the run's wall time, in smoke.json and
smoke.md), not asserted, because speed is measured by benchmarks against same-run baselines,
not by timed tests. A wall-time budget asserted here failed on nothing but a loaded box (133 s
and 148 s against 127 s, beside two other test processes)."""


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench-smoke")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--results-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_SECONDS,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((out / "smoke.json").read_text())
    return result, (out / "smoke.md").read_text()


def _scenario(result: dict[str, Any], key: str) -> dict[str, Any]:
    (found,) = [s for s in result["scenarios"] if s["key"] == key]
    assert found["error"] is None, found["error"]
    return found


def test_makefile_target_runs_the_smoke_command() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^bench-smoke:.*\n\t(.+)$", makefile, re.MULTILINE)
    assert recipe is not None
    assert recipe.group(1).strip().endswith("python -m bench --smoke")
    assert re.search(r"^bench:.*\n\t.+python -m bench$", makefile, re.MULTILINE)


def test_smoke_run_is_complete_and_reports_its_time(smoke: tuple[dict[str, Any], str]) -> None:
    result, markdown = smoke
    assert 0 < result["seconds"] < SMOKE_TIMEOUT_SECONDS
    assert 0 < sum(s["seconds"] for s in result["scenarios"]) <= result["seconds"]
    assert markdown.count("Scenario wall time:") == len(result["scenarios"])
    assert [s["key"] for s in result["scenarios"]] == [
        "throughput",
        "latency",
        "copy",
        "api_submit",
        "capacity",
        "gate_throughput",
        "memory",
    ]
    assert result["machine"]["cores"] >= 1 and result["machine"]["temporalio"]


def test_every_figure_has_a_same_run_baseline_and_ratio(
    smoke: tuple[dict[str, Any], str],
) -> None:
    result, markdown = smoke
    figures = [f for s in result["scenarios"] for f in s["figures"]]
    assert len(figures) >= 15
    for fig in figures:
        # JSON null stands for NaN: every figure and baseline must have been measured, and
        # its ratio too unless the baseline is a count of zero (jobs lost, fallbacks, ...).
        assert None not in (fig["value"], fig["baseline"]), fig
        assert fig["ratio"] is not None or fig["baseline"] == 0, fig
        assert fig["met"] in (True, False, None)
        if fig["met"] is not None:  # judged figures: rates, latencies, calls, sizes, counts
            assert fig["value"] >= 0 and fig["baseline"] >= 0, fig
            assert fig["ratio"] is None or fig["ratio"] >= 0, fig
        assert fig["name"] in markdown
    for scenario in result["scenarios"]:
        assert scenario["how"], scenario["key"]
        assert f"## {scenario['title']}" in markdown


def test_throughput_jobs_all_succeeded(smoke: tuple[dict[str, Any], str]) -> None:
    all_details = _scenario(smoke[0], "throughput")["details"]
    details = all_details["in_memory"]
    assert details["failed_jobs"] == []
    if "breaker" in Settings.model_fields:  # the diagnosis pass runs the same jobs without it
        assert all_details["breaker_off"]["failed_jobs"] == []
    assert details["pipeline_rates"] and details["floor_rates"]
    shape = details["job_shape"]
    assert shape["signals"] >= 1 and shape["activity_types"]["copy_output"] == 1


def test_latency_modes_stored_every_video(smoke: tuple[dict[str, Any], str]) -> None:
    details = _scenario(smoke[0], "latency")["details"]
    assert details["failed_jobs"] == {"callbacks": 0, "polling": 0, "naive": 0}
    for mode, samples in details["samples"].items():
        assert len(samples) == details["jobs_per_mode"], mode
        for sample in samples:
            assert sample["ok"] and sample["stored_mtime"] >= sample["succeeded_at"] - 1, sample
            assert sample["api_calls"] >= 2, sample  # a create and at least one GET
            assert sample["downloads"] == 1, sample


def test_copy_moved_the_whole_video_both_ways(smoke: tuple[dict[str, Any], str]) -> None:
    details = _scenario(smoke[0], "copy")["details"]
    for backend in ("file", "s3"):
        reps = details[backend]["reps"]
        assert reps, backend
        for rep in reps:
            assert rep["bytes"] == rep["plain_bytes"] >= 20_000_000, rep


def test_memory_curve_has_every_step(smoke: tuple[dict[str, Any], str]) -> None:
    details = _scenario(smoke[0], "memory")["details"]
    steps = {int(k) for k in details["pipeline_rss_mb"]}
    assert steps == {int(k) for k in details["floor_rss_mb"]} == {0, 10, 20}
    assert all(v > 10 for v in details["pipeline_rss_mb"].values())


def test_api_submit_measured_both_paths(smoke: tuple[dict[str, Any], str]) -> None:
    details = _scenario(smoke[0], "api_submit")["details"]
    assert details["api_rates"] and details["direct_rates"]
    assert all(r > 0 for r in details["api_rates"] + details["direct_rates"])
    assert details["terminated_after"] >= 2 * details["jobs_per_run"]


def test_capacity_bursts_ran_with_the_gate_and_without(
    smoke: tuple[dict[str, Any], str],
) -> None:
    details = _scenario(smoke[0], "capacity")["details"]["individual"]
    on, off = details["gate_on"], details["gate_off"]
    assert on["jobs"] == off["jobs"] == 13  # two batches of 6 and the interactive job
    assert on["outcomes"] == {"succeeded": 13}
    assert on["gate_at_end"]["holders"] == 0 and on["gate_at_end"]["waiting"] == 0
    # Without the gate the lowered queued cap (4) must refuse some of the burst's creates; with
    # it, no more (none on a quiet machine; one has been seen on a loaded one, where the
    # gate-off burst also drew as few as one, its creates spread out by the load; 13 jobs are
    # too few for a share: the refused-creates target is the full run's, in docs/benchmarks.md).
    assert off["refused"] > 0 and off["gate_at_end"] is None
    assert on["refused"] <= min(1, off["refused"])
    assert on["interactive_seconds"] > 0 and on["tasks"] == 13
