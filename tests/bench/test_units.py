"""Unit tests of the harness's own arithmetic and wiring (no servers)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from bench import bounds, naive, stats
from bench.plain_copy import StreamReader
from bench.profile import summarise
from bench.report import Figure, RunResult, ScenarioResult, render_markdown
from bench.stack import BenchStack, EmulatorSpec
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.models import GenerationRequest
from seedance_pipeline.core.request_body import build_create_body


def test_percentiles_interpolate_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert stats.percentile(values, 50) == 2.5
    assert stats.percentile(values, 0) == 1.0
    assert stats.percentile(values, 100) == 4.0
    assert stats.percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert math.isnan(stats.percentile([], 50))


def test_slope_and_ratio() -> None:
    assert stats.slope([0, 1, 2], [1, 3, 5]) == pytest.approx(2.0)
    assert math.isnan(stats.slope([1, 1], [1, 2]))
    assert stats.ratio(3, 4) == 0.75
    assert math.isnan(stats.ratio(3, 0))


def test_figure_ratio_and_markdown_handle_missing_values() -> None:
    fig = Figure("x", 150.0, "jobs/min", 300.0, "floor", target=">= 70%", met=False)
    assert fig.ratio == 0.5
    empty = Figure("y", float("nan"), "s", None, "none", target="reported", met=None)
    assert empty.ratio is None
    machine = {
        "cores": 2,
        "ram_gib": 1.0,
        "cpu": "cpu",
        "os": "os",
        "python": "3.11",
        "temporalio": "1",
        "temporal_cli": "1",
        "loadavg_at_start": [0, 0, 0],
    }
    run = RunResult("smoke", "cmd", machine, [ScenarioResult("k", "Title", [fig, empty])])
    text = render_markdown(run)
    assert "| Title | x | 150 jobs/min | 300 jobs/min (floor) | 0.50" in text
    assert "**not met**" in text and "n/a" in text


def test_naive_client_asks_for_what_the_pipeline_asks_for() -> None:
    """Same model, shape and duration, so both get the same video from the emulator."""
    settings = load_settings()
    spec = settings.models["mini"]
    request = GenerationRequest(prompt="p", model="mini")
    ours = build_create_body(
        request, spec.ids["byteplus"], spec.default_resolution, spec.default_ratio, None
    )
    theirs = naive.create_body(spec.ids["byteplus"], "p")
    for key in ("model", "content", "resolution", "ratio", "duration"):
        assert theirs[key] == ours[key], key


def test_bench_env_sets_everything_stack_env_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness mirrors `stack.embedded.stack_env()`; a new key there must appear here."""
    from seedance_pipeline.stack import embedded

    for name in ("ARK_API_KEY", "VOLC_ARK_API_KEY", "SEEDANCE_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(embedded, "DATA", tmp_path / "stack")
    theirs = embedded.stack_env(embedded.Ports())
    added = {k for k in theirs if k not in os.environ}
    ours = BenchStack(tmp_path / "bench").env()
    assert added <= set(ours), added - set(ours)
    assert ours["TEMPORAL_ADDRESS"] != theirs["TEMPORAL_ADDRESS"]  # never the default ports


def test_emulator_spec_flags_and_mean() -> None:
    spec = EmulatorSpec(queue_seconds=0.5, run_seconds=1.5, jitter=0.5, min_video_bytes=10)
    assert spec.mean_latency == 2.0
    argv = spec.argv()
    assert argv[argv.index("--min-video-bytes") + 1] == "10"


def test_stream_reader_reads_exact_sizes() -> None:
    reader = StreamReader(iter([b"abc", b"defg", b"h"]))
    assert reader.read(2) == b"ab"
    assert reader.read(4) == b"cdef"
    assert reader.read(-1) == b"gh"
    assert reader.read(5) == b""


def test_poll_schedule_follows_backoff() -> None:
    assert bounds.poll_schedule(15, 2, 60, 1.6) == [15.0, 39.0, 77.4, 137.4, 197.4]


def test_profile_summary_counts_self_and_inclusive(tmp_path: Path) -> None:
    raw = tmp_path / "p.txt"
    raw.write_text(
        'process 1:"python";main (a/worker.py:1);put (b/store.py:2) 3\n'
        'process 1:"python";main (a/worker.py:1);hash (b/store.py:9) 1\n'
    )
    summary = summarise(raw)
    assert summary["samples"] == 4
    assert summary["self_pct"][0] == ("store.py:put", 75.0)
    assert ("worker.py:main", 100.0) in summary["inclusive_pct"]
