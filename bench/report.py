"""Results: one JSON file for machines and one Markdown page for people.

Machines are shared and noisy, so every figure carries the baseline measured in the same run
and the ratio between them; a target is judged on the figure it names (absolute or ratio),
and both are printed so a reader can tell a slow machine from a slow pipeline.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import summary


@dataclass
class Figure:
    """One measured number, its same-run baseline, and the target it is judged against."""

    name: str
    value: float
    unit: str
    baseline: float | None
    baseline_name: str
    target: str
    met: bool | None
    ratio: float | None = None
    ratio_label: str = "figure / baseline"

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline and not math.isnan(self.baseline):
            self.ratio = self.value / self.baseline


@dataclass
class ScenarioResult:
    key: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    how: list[str] = field(default_factory=list)
    bounds: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    run: dict[str, Any] | None = None
    """Set when this scenario was measured by a run of its own and merged into the published
    results (`python -m bench --only <it> --publish`): that run's command, time and machine."""


@dataclass
class RunResult:
    mode: str
    command: str
    machine: dict[str, Any]
    scenarios: list[ScenarioResult]
    results_file: str = "bench/results/latest.json"
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    seconds: float = 0.0

    def all_figures(self) -> list[tuple[ScenarioResult, Figure]]:
        return [(s, f) for s in self.scenarios for f in s.figures]


def _clean(value: Any) -> Any:
    """JSON has no NaN: write null instead."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def load_run(path: Path) -> RunResult:
    """A results file read back (null figures come back as NaN, as they were measured)."""
    data = json.loads(path.read_text())

    def num(value: Any) -> float:
        return math.nan if value is None else float(value)

    scenarios = []
    for sc in data.get("scenarios", []):
        figures = [
            Figure(
                **{
                    **f,
                    "value": num(f["value"]),
                    "baseline": None if f["baseline"] is None else float(f["baseline"]),
                }
            )
            for f in sc.get("figures", [])
        ]
        scenarios.append(ScenarioResult(**{**sc, "figures": figures}))
    fields = {k: v for k, v in data.items() if k in RunResult.__dataclass_fields__}
    return RunResult(**{**fields, "scenarios": scenarios})


def merge(published: RunResult, run: RunResult, order: list[str]) -> RunResult:
    """The published results with `run`'s scenarios in place of theirs (or added, in `order`),
    each marked with the run that measured it. The rest of the page stays as measured."""
    fresh = {s.key: s for s in run.scenarios}
    for scenario in fresh.values():
        scenario.run = {
            "command": run.command,
            "mode": run.mode,
            "started_at": run.started_at,
            "seconds": run.seconds,
            "machine": run.machine,
        }
    kept = {s.key: s for s in published.scenarios if s.key not in fresh}
    everything = {**kept, **fresh}
    keys = [k for k in order if k in everything] + [k for k in everything if k not in order]
    published.scenarios = [everything[k] for k in keys]
    return published


def write_json(result: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(asdict(result)), indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


COUNT_UNITS = frozenset({"jobs", "openings"})
"""Units of whole counts: printed without decimals."""


def _num(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    magnitude = abs(value)
    if unit in COUNT_UNITS and float(value).is_integer():
        text = f"{int(value):,}"
    elif magnitude >= 100:
        text = f"{value:,.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".strip()


def _met(met: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "—"}[met]


def _figure_row(fig: Figure) -> str:
    ratio = "n/a" if fig.ratio is None or math.isnan(fig.ratio) else f"{fig.ratio:.2f}"
    baseline = f"{_num(fig.baseline, fig.unit)} ({fig.baseline_name})"
    return (
        f"| {fig.name} | {_num(fig.value, fig.unit)} | {baseline} | {ratio} "
        f"({fig.ratio_label}) | {fig.target} | {_met(fig.met)} |"
    )


def _merged_runs(result: RunResult) -> list[str]:
    merged = [s for s in result.scenarios if s.run]
    if not merged:
        return []
    lines = [
        f"- {s.title}: measured by `{s.run['command']}` ({s.run['mode']} plan) at "
        f"{s.run['started_at']} in {s.run['seconds'] / 60:.1f} min and merged into this page."
        for s in merged
        if s.run
    ]
    return [
        "Scenarios measured by a run of their own (same harness, same machine):",
        "",
        *lines,
        "",
    ]


def render_markdown(result: RunResult) -> str:
    m = result.machine
    lines = [
        "# Benchmarks",
        "",
        *summary.block(_clean(asdict(result)), summary.load(summary.CHAOS_RESULTS)),
        "",
        f"Generated by `{result.command}` ({result.mode} run) at {result.started_at} in "
        f"{result.seconds / 60:.1f} min. Do not edit by hand: rerun `make bench`. "
        f"Raw numbers: `{result.results_file}`.",
        "",
        *_merged_runs(result),
        "Machines are shared and noisy, so every figure stands next to a baseline measured on "
        "the same machine in the same run, and the ratio between them. How each figure was "
        "measured is written under its table; the harness is `bench/` (`python -m bench`).",
        "",
        "## Machine",
        "",
        "| cores | RAM | CPU | OS | Python | temporalio | temporal CLI | load at start |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {m['cores']} | {m['ram_gib']} GiB | {m['cpu']} | {m['os']} | {m['python']} | "
        f"{m['temporalio']} | {m['temporal_cli']} | {m['loadavg_at_start']} |",
        "",
        "## Summary",
        "",
        "| scenario | figure | value | baseline (same run) | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scenario, fig in result.all_figures():
        row = _figure_row(fig)
        lines.append(f"| {scenario.title} {row}")
    missed = [(sc, f) for sc, f in result.all_figures() if f.met is False]
    failed = [sc for sc in result.scenarios if sc.error]
    if missed or failed:
        lines += ["", "Targets not met (what bounds each is under its scenario):", ""]
        lines += [
            f"- {sc.title}: {f.name} = {_num(f.value, f.unit)} against {f.target} "
            f"(baseline {_num(f.baseline, f.unit)}, ratio {f.ratio or float('nan'):.2f})."
            for sc, f in missed
        ]
        lines += [f"- {sc.title}: the scenario failed ({sc.error})." for sc in failed]
    for scenario in result.scenarios:
        lines += ["", f"## {scenario.title}", ""]
        if scenario.error:
            lines += [f"**The scenario failed:** `{scenario.error}`", ""]
        if scenario.figures:
            lines += [
                "| figure | value | baseline (same run) | ratio | target | met |",
                "| --- | --- | --- | --- | --- | --- |",
                *(_figure_row(f) for f in scenario.figures),
                "",
            ]
        if scenario.how:
            lines += ["How it was measured:", ""]
            lines += [f"- {item}" for item in scenario.how]
            lines.append("")
        if scenario.bounds:
            lines += ["What bounds it:", ""]
            lines += [f"- {item}" for item in scenario.bounds]
            lines.append("")
        lines.append(f"Scenario wall time: {scenario.seconds:.0f} s.")
        if scenario.run:
            m = scenario.run["machine"]
            lines.append(
                f"Measured by `{scenario.run['command']}` at {scenario.run['started_at']} "
                f"(load at start {m.get('loadavg_at_start')}), not by the run above."
            )
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(result: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(result))
