"""Results read back and merged: the published page is what `bench/report.py` renders from the
committed results file (nobody edits it by hand), and a scenario measured by a run of its own
(`--only X --publish`) replaces only its own section, saying which run measured it."""

from __future__ import annotations

from pathlib import Path

from bench.report import (
    Figure,
    RunResult,
    ScenarioResult,
    load_run,
    merge,
    render_markdown,
    write_json,
)
from bench.summary import BENCH_RESULTS, ROOT

MACHINE = {
    "cores": 2,
    "ram_gib": 24,
    "cpu": "x",
    "os": "y",
    "python": "3.11",
    "temporalio": "1",
    "temporal_cli": "1",
    "loadavg_at_start": [0.5, 0.5, 0.5],
}


def _run(command: str, *scenarios: ScenarioResult) -> RunResult:
    return RunResult("full", command, MACHINE, list(scenarios), started_at="2026-12-01T10:00:00")


def _scenario(key: str, value: float) -> ScenarioResult:
    fig = Figure(f"{key} figure", value, "jobs", 0.0, "gate off", target="0", met=value == 0)
    return ScenarioResult(key=key, title=key.title(), figures=[fig], how=["h"], seconds=60)


def test_the_published_page_is_the_rendering_of_the_committed_results() -> None:
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    assert render_markdown(load_run(BENCH_RESULTS)) == page


def test_a_results_file_reads_back_as_written(tmp_path: Path) -> None:
    run = _run("python -m bench", _scenario("throughput", 3), _scenario("memory", 0))
    run.scenarios[0].figures[0].baseline = float("nan")
    write_json(run, tmp_path / "r.json")
    back = load_run(tmp_path / "r.json")
    assert render_markdown(back) == render_markdown(run)


def test_a_merged_scenario_replaces_only_its_own_and_names_its_run() -> None:
    published = _run("python -m bench", _scenario("throughput", 3), _scenario("memory", 1))
    own = _run("python -m bench --only capacity --publish", _scenario("capacity", 0))
    merged = merge(published, own, ["throughput", "capacity", "memory"])
    assert [s.key for s in merged.scenarios] == ["throughput", "capacity", "memory"]
    assert merged.command == "python -m bench"  # the page is still that run's
    assert merged.scenarios[1].run is not None
    assert merged.scenarios[0].run is None
    page = render_markdown(merged)
    assert "measured by `python -m bench --only capacity --publish`" in page
    assert page.count("not by the run above") == 1

    again = merge(merged, _run("python -m bench --only capacity", _scenario("capacity", 2)), [])
    assert [s.figures[0].value for s in again.scenarios if s.key == "capacity"] == [2]
    assert len(again.scenarios) == 3
