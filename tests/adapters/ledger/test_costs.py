"""The `costs` report: grouping, per-currency totals, cost per second; the CLI on both backends."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from seedance_pipeline.adapters.ledger_schema import Ledger
from seedance_pipeline.clients.costs import cost_report, day_window
from seedance_pipeline.clients.costs_cli import app
from seedance_pipeline.core.models import LedgerEntry
from tests.adapters.ledger.support import entry
from tests.clients.support import cli

PRO = "dreamina-seedance-2-0-260128"
FAST = "dreamina-seedance-2-0-fast-260128"


def at(day: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, 12, 0, tzinfo=UTC)


def rows() -> list[LedgerEntry]:
    unbilled: dict[str, Any] = {"tokens": 0, "billed": False, "cost": 0.0}
    return [
        entry("a", finished_at=at(1)),
        entry("b", 1, finished_at=at(1), model_id=FAST, outcome="failed", **unbilled),
        entry("b", 2, finished_at=at(1), model_id=FAST, cost=0.6048),
        entry("c", finished_at=at(2), model_id=PRO, duration=10, tokens=216_000, cost=1.512),
        entry(
            "d",
            finished_at=at(2),
            model_id="doubao-seedance-2-0-260128",
            route="volcengine",
            currency="CNY",
            cost=4.968,
        ),
        entry("e", finished_at=at(3), outcome="rejected_moderation", **unbilled),
        entry("f", finished_at=at(31, 10)),
    ]


def test_by_model_counts_only_billed_seconds_and_money() -> None:
    report = cost_report([r for r in rows() if r.currency == "USD"], by="model")
    fast = next(line for line in report.lines if line.group == FAST)
    assert (fast.jobs, fast.attempts, fast.billed_attempts) == (1, 2, 1)
    assert (fast.video_seconds, fast.tokens, fast.cost) == (5, 108_000, 0.6048)
    assert fast.cost_per_second == pytest.approx(0.12096)
    (total,) = report.totals
    assert (total.jobs, total.video_seconds, total.cost) == (5, 25, 0.378 * 2 + 0.6048 + 1.512)


def test_currencies_are_never_added_together() -> None:
    report = cost_report(rows(), by="route")
    assert [(t.currency, t.cost) for t in report.totals] == [("CNY", 4.968), ("USD", 2.8728)]


def test_a_group_without_billed_video_has_no_cost_per_second() -> None:
    report = cost_report(rows(), by="outcome")
    rejected = next(line for line in report.lines if line.group == "rejected_moderation")
    assert (rejected.jobs, rejected.cost, rejected.cost_per_second) == (1, 0.0, None)


def test_until_includes_its_whole_day() -> None:
    start, end = day_window(date(2026, 11, 1), date(2026, 11, 2))
    assert (start, end) == (at(1).replace(hour=0), at(3).replace(hour=0))
    with pytest.raises(ValueError, match="before --since"):
        day_window(date(2026, 11, 2), date(2026, 11, 1))


@pytest.fixture
def cli_env(ledger: Ledger, ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    monkeypatch.setenv("SEEDANCE_LEDGER__URL", ledger_url)
    for row in rows():
        ledger.upsert(row)
    return ledger


def test_costs_json_by_day(cli_env: Ledger) -> None:
    result = cli("costs", "--since", "2026-11-01", "--until", "2026-11-02", "--by", "day", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    lines = [
        (x["group"], x["currency"], x["jobs"], x["video_seconds"], x["cost"])
        for x in report["lines"]
    ]
    assert lines == [
        ("2026-11-01", "USD", 2, 10, 0.9828),
        ("2026-11-02", "CNY", 1, 5, 4.968),
        ("2026-11-02", "USD", 1, 10, 1.512),
    ]
    usd = next(t for t in report["totals"] if t["currency"] == "USD")
    assert (usd["tokens"], usd["cost"], usd["cost_per_second"]) == (432_000, 2.4948, 0.12474)


def test_costs_table_and_bad_dates(cli_env: Ledger) -> None:
    result = cli("costs", "--by", "model")
    assert result.code == 0, result.err
    assert PRO in result.out and "2.8728" in result.out and "4.9680" in result.out
    bad = cli("costs", "--since", "November")
    assert bad.code == 2
    assert len(bad.err_lines) == 1 and "not a date" in bad.err


def test_the_sub_app_merges_into_a_parent_cli() -> None:
    """starter.py registers it with `app.add_typer(costs_app)`: top-level commands."""
    parent = typer.Typer()

    @parent.command()
    def generate() -> None: ...

    parent.add_typer(app)
    result = CliRunner().invoke(parent, ["costs", "--help"])
    assert result.exit_code == 0
    assert "--by" in result.stdout


def test_by_run_lists_each_run_and_unattributed_tasks_count_in_the_totals() -> None:
    from seedance_pipeline.core.models import UnattributedTask

    first = entry("a", run="run-1", provider_task_id="t1", finished_at=at(1))
    second = entry("a", run="run-2", provider_task_id="t2", finished_at=at(2))
    orphan = UnattributedTask(
        task_id="t9",
        route="byteplus",
        model_id=PRO,
        status="succeeded",
        tokens=108_000,
        unit_price=7.0,
        currency="USD",
        cost=0.756,
        candidates=["b", "c"],
        seen_at=at(2),
    )
    report = cost_report([first, second], "run", unattributed=[orphan])
    assert [(line.group, line.jobs, line.cost) for line in report.lines] == [
        ("a run-1", 1, 0.378),
        ("a run-2", 1, 0.378),
        ("unattributed", 0, 0.756),
    ]
    (total,) = report.totals
    assert (total.cost, total.billed_attempts, total.tokens) == (1.512, 3, 324_000)
