"""`python -m bench [--smoke | --quick] [--only a,b] [--results-dir DIR] [--doc PATH]`.

Starts a private embedded stack (fresh ports, temporary data directory), runs the scenarios in
order, and writes the results: a full run of every scenario writes `bench/results/latest.json`
and `docs/benchmarks.md`; a smoke or partial run writes `<name>.json` and `<name>.md` under
`.data/bench/` (git-ignored), so it never replaces the published figures. The exit code is 0
when every scenario ran, whether or not its targets were met: missing a target is a finding,
not a crash; a scenario that could not run is.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import machine, procs
from bench.plan import PLANS, Plan
from bench.report import RunResult, ScenarioResult, load_run, merge, write_json, write_markdown
from bench.scenarios import (
    api_submit,
    capacity,
    copy,
    gate_throughput,
    latency,
    memory,
    throughput,
)
from bench.stack import ROOT, BenchStack

Runner = Callable[[BenchStack, Plan, ScenarioResult], Awaitable[None]]
SCENARIOS: dict[str, tuple[str, Runner]] = {
    "throughput": ("Throughput", throughput.run),
    "latency": ("Completion to storage and API budget", latency.run),
    "copy": ("Copy of one large video", copy.run),
    "api_submit": ("Submit through the HTTP API", api_submit.run),
    "capacity": ("Volume within the account's limits (capacity gate)", capacity.run),
    "gate_throughput": ("Throughput with the capacity gate on and off", gate_throughput.run),
    "memory": ("Worker memory with jobs in flight", memory.run),
}
"""Run order matters: memory leaves a thousand jobs waiting on the server, so it goes last
(capacity terminates the jobs it leaves waiting)."""


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a few jobs per scenario")
    parser.add_argument(
        "--quick", action="store_true", help="smaller than the full run, for iterating on a fix"
    )
    parser.add_argument("--only", default="", help=f"comma list of {', '.join(SCENARIOS)}")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help="default: bench/results for a full run of every scenario, .data/bench otherwise",
    )
    parser.add_argument("--doc", type=Path, default=None, help="Markdown report path")
    parser.add_argument("--keep-data", action="store_true", help="keep the temp data dir")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="with --only (full plan): merge these scenarios into bench/results/latest.json "
        "and regenerate docs/benchmarks.md, keeping the other scenarios as they were measured",
    )
    return parser.parse_args(argv)


async def _run(plan: Plan, names: list[str], data: Path, command: str) -> RunResult:
    run = RunResult(mode=plan.name, command=command, machine=machine.describe(), scenarios=[])
    started = time.monotonic()
    stack = BenchStack(data)
    try:
        stack.start()
        for name in names:
            title, runner = SCENARIOS[name]
            result = ScenarioResult(key=name, title=title)
            run.scenarios.append(result)
            t0 = time.monotonic()
            print(f"bench: {name} ...", flush=True)
            try:
                await runner(stack, plan, result)
            except Exception as exc:
                result.error = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            finally:
                stack.stop_worker()
                result.seconds = time.monotonic() - t0
            for fig in result.figures:
                print(
                    f"  {fig.name}: {fig.value:.3f} {fig.unit} (baseline {fig.baseline}) "
                    f"met={fig.met}",
                    flush=True,
                )
    finally:
        stack.stop()
    run.seconds = time.monotonic() - started
    return run


def _interrupted(signum: int, frame: object) -> None:
    """SIGTERM: unwind like Ctrl-C so every child process is stopped on the way out."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    plan = PLANS["smoke" if args.smoke else "quick" if args.quick else "full"]
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"bench: unknown scenario(s) {unknown}; known: {list(SCENARIOS)}", file=sys.stderr)
        return 2
    names = [n for n in SCENARIOS if n in names]
    if args.publish and (plan.name != "full" or not args.only):
        print("bench: --publish merges a full-plan run of --only scenarios", file=sys.stderr)
        return 2
    command = "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    data = Path(tempfile.mkdtemp(prefix="seedance-bench-"))
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        run = asyncio.run(_run(plan, names, data, command.strip()))
    finally:
        procs.stop_all()
        if args.keep_data:
            print(f"bench: data kept in {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)
    complete = names == list(SCENARIOS)
    published = ROOT / "bench" / "results" / "latest.json"
    if args.publish and published.exists() and not any(s.error for s in run.scenarios):
        run = merge(load_run(published), run, list(SCENARIOS))
        complete = True
    if plan.name == "full" and complete:
        stem = "latest"
        results_dir = args.results_dir or ROOT / "bench" / "results"
        default_doc = ROOT / "docs" / "benchmarks.md"
    else:  # a smoke or partial run never overwrites the published figures
        stem = plan.name if complete else f"{plan.name}-{'-'.join(names)}"
        results_dir = args.results_dir or ROOT / ".data" / "bench"
        default_doc = results_dir / f"{stem}.md"
    json_path = results_dir / f"{stem}.json"
    run.results_file = str(
        json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT) else json_path
    )
    write_json(run, json_path)
    doc = args.doc or default_doc
    write_markdown(run, doc)
    print(f"bench: wrote {json_path} and {doc} in {run.seconds:.0f}s")
    return 1 if any(s.error for s in run.scenarios) else 0


if __name__ == "__main__":
    sys.exit(main())
