"""The scenarios as data: the deployment ones run two workers on S3 and Postgres, the smoke plan
keeps every disruption kind (shrunk), and the report's "injected" lines say what each does."""

from __future__ import annotations

from chaos.deployment import Deployment, Services
from chaos.scenarios import PLANS, Cancels, PostgresRestarts, injections

FULL = {s.key: s for s in PLANS["full"]}
SMOKE = {s.key: s for s in PLANS["smoke"]}


def test_the_deployment_scenario_runs_what_users_run() -> None:
    s = FULL["deployment"]
    assert (s.deployment.workers, s.deployment.storage, s.deployment.ledger) == (
        2,
        "s3",
        "postgres",
    )
    assert s.provider.min_video_bytes > 2 * 8 * 1024 * 1024  # more than two S3 parts
    kinds = {type(d).__name__ for d in s.disruptions}
    assert {"WorkerKills", "TemporalRestarts", "PostgresRestarts"} <= kinds


def test_the_paid_work_scenarios_are_in_the_full_plan() -> None:
    assert {
        "cancel-running",
        "rerun",
        "get-outage",
        "file-host-outage",
        "polling-ambiguous",
    } <= set(FULL)
    assert not FULL["polling-ambiguous"].deployment.callbacks
    assert FULL["rerun"].reruns == 1.0
    assert any(isinstance(d, Cancels) for d in FULL["cancel-running"].disruptions)


def test_the_smoke_plan_shrinks_every_scenario_and_keeps_its_disruptions() -> None:
    assert set(SMOKE) == set(FULL)
    for key, s in SMOKE.items():
        assert s.jobs == 6 and s.deployment == FULL[key].deployment
        assert [type(d) for d in s.disruptions] == [type(d) for d in FULL[key].disruptions]
    (restart,) = [d for d in SMOKE["deployment"].disruptions if isinstance(d, PostgresRestarts)]
    assert restart.at == (6.0,)


def test_injections_say_what_a_scenario_does() -> None:
    lines = injections(FULL["deployment"])
    assert any(line.startswith("10 worker SIGKILLs") for line in lines)
    assert "Postgres stopped at t+45s for 5s" in lines
    assert any("slow_download (bytes_per_second=4000000" in line for line in lines)
    outage = injections(FULL["get-outage"])
    assert outage[0] == "from t+3s, provider faults: GET outage: get_5xx"
    assert outage[1] == "from t+183s, provider faults: no faults (cleared)"
    assert injections(FULL["rerun"]) == ["after every job closed, 100% of them rerun (same job ID)"]


def test_a_deployment_gives_its_workers_the_storage_and_ledger(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    services = Services(root, root, "sqlite:///x.sqlite3")
    services.s3_port = 9999
    env = services.worker_env(Deployment(storage="s3"))
    assert env["SEEDANCE_STORAGE__URI"] == "s3://chaos-outputs/videos"
    assert env["SEEDANCE_STORAGE__S3_ENDPOINT_URL"] == "http://127.0.0.1:9999"
    assert env["SEEDANCE_LEDGER__URL"] == "sqlite:///x.sqlite3"
    assert "AWS_ACCESS_KEY_ID" in env
    assert services.worker_env(Deployment()) == {"SEEDANCE_LEDGER__URL": "sqlite:///x.sqlite3"}
    assert Deployment(workers=2, storage="s3", ledger="postgres", callbacks=False).describe() == (
        "2 workers, S3 (moto server), Postgres ledger, polling only"
    )
