"""The five lines a user reads first, at the top of docs/benchmarks.md and docs/reliability.md:
what the pipeline gives them (jobs per minute, seconds from provider done to stored, provider
calls per job, jobs lost, duplicate payments), from the latest bench and chaos results.

Both renderers (`bench.report`, `chaos.report`) put the same block at the top of their page,
each with its own run's figures and the other's latest file. `python -m bench.summary`
rewrites only that block in both pages from the committed results, for when the wording
changes but the figures do not (no benchmark is rerun).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH_RESULTS = ROOT / "bench" / "results" / "latest.json"
CHAOS_RESULTS = ROOT / "chaos" / "results" / "latest.json"
PAGES = (ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "reliability.md")
BEGIN = "<!-- summary: generated from bench/ and chaos/ results; `python -m bench.summary` -->"
END = "<!-- /summary -->"
NOT_MEASURED = "not measured in the latest run"

SQLITE_RATE = (
    "jobs per minute (start to last stored object), Temporal on a SQLite file (as `make up`)"
)
MEMORY_RATE = "jobs per minute (start to last stored object)"


def load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _figure(bench: dict[str, Any] | None, scenario: str, name: str) -> float | None:
    for s in (bench or {}).get("scenarios", []):
        if s.get("key") != scenario:
            continue
        for f in s.get("figures", []):
            if f.get("name") == name and isinstance(f.get("value"), int | float):
                return float(f["value"])
    return None


def _seconds(value: float | None) -> str:
    if value is None:
        return NOT_MEASURED
    return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"


def _count(value: float | None) -> str:
    return NOT_MEASURED if value is None else f"{value:g}"


def _when(data: dict[str, Any] | None, tool: str) -> str:
    if data is None:
        return f"no {tool} results yet"
    return f"`{tool}` {data.get('mode', '?')} run of {str(data.get('started_at', '?'))[:10]}"


def block(bench: dict[str, Any] | None, chaos: dict[str, Any] | None) -> list[str]:
    """The summary block: a heading naming the runs, five lines, and the markers around them."""
    on_disk = _figure(bench, "throughput", SQLITE_RATE)
    in_memory = _figure(bench, "throughput", MEMORY_RATE)
    cores = (bench or {}).get("machine", {}).get("cores", "?")
    rate = (
        f"{on_disk:,.0f} jobs per minute on `make up` (Temporal on a SQLite file)"
        if on_disk is not None
        else NOT_MEASURED
    )
    if in_memory is not None:
        rate += f", {in_memory:,.0f} on an in-memory server"
    p50 = _figure(bench, "latency", "completion to storage p50, callbacks")
    p95 = _figure(bench, "latency", "completion to storage p95, callbacks")
    polled = _figure(bench, "latency", "completion to storage p50, polling")
    calls = _figure(bench, "latency", "provider calls per job median, callbacks")
    polled_calls = _figure(bench, "latency", "provider calls per job median, polling")
    totals = (chaos or {}).get("totals", {})
    if totals:
        lost = (
            f"{totals.get('jobs_lost')} of {totals.get('jobs')} jobs, under "
            f"{totals.get('faults_injected')} injected faults (worker kills, Temporal restarts, "
            "webhook outages, network cuts, provider errors and storms)"
        )
        duplicates = (
            f"{totals.get('duplicate_billed')} jobs with a second billed provider task, in the "
            "same runs (a create is never retried blind: an ambiguous one is reconciled first)"
        )
    else:
        lost = duplicates = f"{NOT_MEASURED} (`make chaos`)"
    return [
        BEGIN,
        f"## In five lines ({_when(bench, 'make bench')}, {_when(chaos, 'make chaos')})",
        "",
        f"- **Throughput:** {rate}; measured on {cores} CPU cores.",
        f"- **Provider done to stored:** {_seconds(p50)} median, {_seconds(p95)} p95 with "
        f"callbacks; {_seconds(polled)} median when every callback is lost and polling finds it.",
        f"- **Provider calls per job:** {_count(calls)} with callbacks (the create and one "
        f"confirming GET), {_count(polled_calls)} when polling.",
        f"- **Jobs lost:** {lost}.",
        f"- **Duplicate payments:** {duplicates}.",
        END,
    ]


def with_block(page: str, lines: list[str]) -> str:
    """`page` with its summary block replaced, or inserted after the title when it has none."""
    text = "\n".join(lines)
    if BEGIN in page and END in page:
        head, rest = page.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return head + text + tail
    title, _, body = page.partition("\n")
    return f"{title}\n\n{text}\n{body}"


def main() -> int:
    lines = block(load(BENCH_RESULTS), load(CHAOS_RESULTS))
    for page in PAGES:
        page.write_text(with_block(page.read_text(encoding="utf-8"), lines), encoding="utf-8")
        print(f"summary written to {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
