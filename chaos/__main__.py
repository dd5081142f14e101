"""`python -m chaos [--smoke] [--only a,b] [--doc PATH] [--results PATH] [--seed N]`.

Starts a private embedded stack (fresh ports, temporary data directory, Temporal on a SQLite
file), runs the scenarios in order and checks the invariants after each. A full run of every
scenario (and then the bad-input and security suites, `chaos.suites`) writes
`chaos/results/latest.json` and `docs/reliability.md`; a smoke or partial run
writes under `.data/chaos/` (git-ignored) unless told otherwise, so it never replaces the
published figures. Exit code 0 only when every scenario ran and every invariant held.
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
from pathlib import Path

from bench import machine, procs
from bench.stack import ROOT
from chaos import runner
from chaos.report import RunResult, write_json, write_markdown
from chaos.scenarios import PLANS
from chaos.stack import ChaosStack
from chaos.suites import run_suites

DEFAULT_SEED = 20261124


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    keys = [s.key for s in PLANS["full"]]
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a handful of jobs per scenario")
    parser.add_argument("--only", default="", help=f"comma list of {', '.join(keys)}")
    parser.add_argument("--doc", type=Path, default=None, help="Markdown report path")
    parser.add_argument("--results", type=Path, default=None, help="JSON results path")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="fault and kill seed")
    parser.add_argument("--keep-data", action="store_true", help="keep the temp data dir")
    return parser.parse_args(argv)


async def _run(run: RunResult, keys: list[str], plan: str, data: Path) -> None:
    scenarios = [s for s in PLANS[plan] if s.key in keys]
    stack = ChaosStack(data, fault_seed=run.seed)
    known_jobs: set[str] = set()
    started = time.monotonic()
    try:
        await asyncio.to_thread(stack.start)
        for scenario in scenarios:
            print(f"chaos: {scenario.key} ({scenario.jobs} jobs) ...", flush=True)
            result = await runner.run(stack, scenario, known_jobs, run.seed)
            run.scenarios.append(result)
            verdict = "all invariants hold" if result.holds else "VIOLATED"
            print(
                f"  {verdict}; outcomes {result.outcomes}; faults {result.faults}; "
                f"lost {result.jobs_lost}, duplicate billed {result.duplicate_billed}, "
                f"mismatched {result.mismatched}; {result.seconds:.0f}s"
                + (f"; error {result.error}" if result.error else ""),
                flush=True,
            )
            for inv in result.invariants.values():
                for example in inv.examples[:5]:
                    print(f"    {inv.key}: {example['subject']}: {example['detail']}")
    finally:
        await asyncio.to_thread(stack.stop)
        run.seconds = round(time.monotonic() - started, 1)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    plan = "smoke" if args.smoke else "full"
    all_keys = [s.key for s in PLANS[plan]]
    keys = [k.strip() for k in args.only.split(",") if k.strip()] or all_keys
    unknown = [k for k in keys if k not in all_keys]
    if unknown:
        print(f"chaos: unknown scenario(s) {unknown}; known: {all_keys}", file=sys.stderr)
        return 2
    command = "python -m chaos " + shlex.join(argv if argv is not None else sys.argv[1:])
    run = RunResult(
        mode=plan, command=command.strip(), machine=machine.describe(), seed=args.seed, scenarios=[]
    )
    data = Path(tempfile.mkdtemp(prefix="seedance-chaos-"))
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        asyncio.run(_run(run, keys, plan, data))
    finally:
        procs.stop_all()
        if args.keep_data:
            print(f"chaos: data kept in {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)
    published = plan == "full" and keys == all_keys
    if published:  # a smoke or partial run is for the scenarios; `make test` runs the suites
        print("chaos: bad-input and security suites ...", flush=True)
        run.suites = run_suites()
        print(
            f"  {sum(s.passed for s in run.suites)} passed, "
            f"{sum(s.failed for s in run.suites)} failed in {len(run.suites)} modules",
            flush=True,
        )
    out_dir = ROOT / "chaos" / "results" if published else ROOT / ".data" / "chaos"
    stem = "latest" if published else f"{plan}-{'-'.join(keys) if keys != all_keys else 'all'}"
    json_path = args.results or out_dir / f"{stem}.json"
    doc = args.doc or (ROOT / "docs" / "reliability.md" if published else out_dir / f"{stem}.md")
    run.results_file = str(
        json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT) else json_path
    )
    write_json(run, json_path)
    write_markdown(run, doc)
    print(
        f"chaos: {'every invariant holds' if run.holds else 'INVARIANTS VIOLATED'}; "
        f"wrote {json_path} and {doc} in {run.seconds:.0f}s"
    )
    return 0 if run.holds else 1


if __name__ == "__main__":
    sys.exit(main())
