"""The Markdown report from hand-built results: figures, per-scenario tables, violations and the
billed-but-unrecorded tasks are all written out, and a violation flips the headline."""

from __future__ import annotations

from chaos.disruptions import KillRecord
from chaos.invariants import INVARIANTS, Violation
from chaos.report import InvariantResult, RunResult, ScenarioResult, to_markdown
from chaos.suites import SuiteResult


def scenario(violations: dict[str, list[Violation]] | None = None) -> ScenarioResult:
    found = violations or {}
    return ScenarioResult(
        key="worker-kills",
        title="kills",
        kind="process",
        jobs=3,
        outcomes={"succeeded": 2, "failed_infra": 1},
        error_codes={"AmbiguousSubmit": 1},
        faults={"worker_sigkill": 1, "provider:create_5xx": 4},
        invariants={
            key: InvariantResult.of(key, title, found.get(key, []))
            for key, (title, _) in INVARIANTS.items()
        },
        kills=[
            KillRecord(
                at=3.0,
                mode="ledger-lock",
                jobs_running=2,
                job_states={"storing": 2},
                activities={"record_cost": 1, "copy_output": 1},
                waiting_activities={},
                phases=["copy", "ledger", "submit", "wait"],
                restart_seconds=1.2,
            )
        ],
        kill_phases={"copy": 1, "ledger": 1, "submit": 1, "wait": 1},
        billed_not_in_ledger=[
            {
                "task_id": "cgt-1",
                "billed_tokens": 100,
                "job_id": "job-9",
                "job_outcome": "failed_infra",
                "job_task_id": None,
                "error_code": "AmbiguousSubmit",
                "error_message": "create 1 may have made a task",
                "notes": [],
            }
        ],
    )


def run_of(*scenarios: ScenarioResult) -> RunResult:
    return RunResult(
        mode="full",
        command="python -m chaos",
        machine={"cores": 2, "cpu": "test"},
        seed=1,
        scenarios=list(scenarios),
    )


def test_markdown_states_the_figures_and_each_scenario() -> None:
    md = to_markdown(run_of(scenario()))
    assert "**Every invariant holds: yes.**" in md
    assert "| jobs run | 3 |" in md
    assert "| faults injected | 5 |" in md
    assert "| provider:create_5xx | 4 |" in md
    assert "| why jobs did not succeed | AmbiguousSubmit 1 |" in md
    assert (
        "| 1 | 3 s | ledger-lock (worker) | 2 | copy_output 1, record_cost 1 | storing 2 | 1.2 s |"
        in md
    )
    assert "Kills landed during submit, wait, copy and ledger write: **yes**." in md
    assert "task `cgt-1` (100 tokens), made for job `job-9`, which ended failed_infra" in md


def test_a_violation_is_named_and_flips_the_headline() -> None:
    bad = scenario({"one_billed_task_per_job": [Violation("job-2", "2 billed provider tasks")]})
    md = to_markdown(run_of(bad))
    assert "**Every invariant holds: NO.**" in md
    assert "**VIOLATED** (1 violations)" in md
    assert "- `job-2`: 2 billed provider tasks" in md
    assert run_of(bad).totals()["invariants_hold"] is False


def test_the_security_suites_are_tabled_and_a_failure_flips_the_headline() -> None:
    run = run_of(scenario())
    run.suites = [
        SuiteResult("tests/security/test_a.py", "Attacks the config loader.", 17, 0, 2.0),
        SuiteResult("tests/security/test_b.py", "Attacks callbacks.", 8, 0, 5.5),
    ]
    text = to_markdown(run)
    assert "## Bad input and security" in text and "**25 passed, 0 failed**" in text
    assert "| `tests/security/test_a.py` | Attacks the config loader. | 17 | 0 |" in text
    assert run.holds
    run.suites[1].failed = 1
    assert not run.holds and "| **1** |" in to_markdown(run)


def test_each_scenario_says_its_deployment_what_it_injected_and_the_money() -> None:
    s = scenario()
    s.deployment = "2 workers, S3 (moto server), Postgres ledger, callbacks"
    s.injected = ["from t+0s, provider faults: get_5xx", "Postgres stopped at t+45s for 5s"]
    s.money = {"USD": {"billed": 1.25, "recorded": 1.25}}
    s.provider_killed_urls = ["cgt-2"]
    md = to_markdown(run_of(s))
    assert "| deployment | 2 workers, S3 (moto server), Postgres ledger, callbacks |" in md
    assert "- from t+0s, provider faults: get_5xx" in md
    assert "- Postgres stopped at t+45s for 5s" in md
    assert "| money | USD billed 1.25, recorded 1.25 |" in md
    assert "| billed, URL expired early by the provider | 1 " in md
