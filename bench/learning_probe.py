"""`python -m bench.learning_probe [JOBS]`: the capacity scenario's learning burst alone, gate
on, for iterating on the gate's learning (a full `--only capacity` run takes 35 minutes).

The provider's RPM binds (the full plan's 100 per minute, enterprise account), the configured
limits are 3x too high, and the gate is sampled each second. Prints the scenario's two
learning figures (refused creates, share of creates; accepted creates per minute once
learned, share of the provider's RPM), when refusals came, and the learned rate over time.
Nothing is written under `bench/results/`.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from bench.capacity_runs import Burst, limits_of, run_burst
from bench.capacity_shown import Prices, show
from bench.plan import FULL
from bench.scenarios.capacity import label, provider
from bench.stack import BenchStack
from seedance_pipeline.config.loader import load_settings

SAMPLE_EVERY = 10
"""Print one gate sample in this many (they are taken once a second)."""


async def probe(jobs: int) -> None:
    spec = provider(FULL, "enterprise", rpm=FULL.capacity_learning_rpm)
    high = limits_of(spec).scaled(3)
    stack = BenchStack(Path(tempfile.mkdtemp(prefix="learning-probe-")))
    stack.start()
    try:
        burst = Burst(
            label(spec), spec, high, gate=True, jobs=jobs, interactive=False, poll_gate=True
        )
        run = await run_burst(stack, burst, interactive_after=0)
    finally:
        stack.stop_worker()
        stack.stop()
    shown = show(run, Prices.of(load_settings()))
    print(
        f"jobs {jobs}, configured {high.concurrency} / {high.rpm} / {high.queued} on {label(spec)}"
    )
    print(f"refused creates: {shown.refused_share:.1%} of creates ({shown.refused} refused)")
    print(f"accepted creates per minute once learned: {shown.learned_rate:.1%} of the RPM")
    t0 = run.started
    steps = zip(run.refused_samples, run.refused_samples[1:], strict=False)
    print(
        "refusals (s, count):",
        [(round(b[0] - t0, 1), b[1] - a[1]) for a, b in steps if b[1] > a[1]],
    )
    for sample in run.gate_samples[::SAMPLE_EVERY]:
        rates = ", ".join(f"{r:.1f}" for r in sample["rpm_learned"].values())
        print(f"  {sample['t'] - t0:6.1f} s  learned {rates}/min  holders {sample['holders']}")


if __name__ == "__main__":
    asyncio.run(probe(int(sys.argv[1]) if len(sys.argv) > 1 else FULL.capacity_learning_jobs))
