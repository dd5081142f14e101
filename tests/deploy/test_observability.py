"""Static checks of Prometheus, its alert rules, Grafana provisioning and the dashboard.

WORKER_METRICS is the contract with the worker: the dashboard and alerts query exactly these
names, as they appear on the worker's /metrics, and they must equal `core.metric_names.ALL`.
Both the SDK's metrics and the pipeline's own go through the SDK's Prometheus exporter with its
defaults: counters carry no `_total` suffix, SDK latencies are in milliseconds, the pipeline's
histograms in seconds (or the route's currency, for cost).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from seedance_pipeline.core import metric_names as worker_metric_names
from seedance_pipeline.core.models import Outcome
from seedance_pipeline.webhook.metrics import Metrics
from seedance_pipeline.webhook.outcome import Result
from tests.deploy.support import (
    DEPLOY,
    environment,
    host_path_for,
    load_yaml,
    resolve,
    services,
)

# The pipeline's metrics, exported by the worker on WORKER_METRICS_PORT (9464), with the labels
# the dashboard groups by: jobs {outcome, model, route}; job seconds {outcome, model, route};
# provider calls {op, status}; provider call seconds {op}; provider run seconds {model};
# completion to storage {kind}; cost {route, model, currency}; video seconds {route, model};
# callbacks {result}; capacity gauges {route, model_id} (queued cap {route}); capacity refusals
# {route, limit}; reconcile findings {route, kind, salvaged}.
WORKER_METRICS: dict[str, str] = {
    "seedance_jobs": "counter",
    "seedance_job_seconds": "histogram",
    "seedance_provider_calls": "counter",
    "seedance_provider_call_seconds": "histogram",
    "seedance_provider_queue_seconds": "histogram",
    "seedance_provider_run_seconds": "histogram",
    "seedance_completion_to_storage_seconds": "histogram",
    "seedance_cost": "histogram",
    "seedance_video_seconds": "counter",
    "seedance_callbacks": "counter",
    "seedance_capacity_waiting": "gauge",
    "seedance_capacity_in_flight": "gauge",
    "seedance_capacity_rpm_learned": "gauge",
    "seedance_capacity_queued_learned": "gauge",
    "seedance_capacity_refusals": "counter",
    "seedance_reconcile_findings": "counter",
}

# The webhook receiver's own metrics (prometheus_client), served on its port 8701.
WEBHOOK_METRICS: dict[str, str] = {
    "seedance_webhook_callbacks_total": "counter",
    "seedance_webhook_callback_seconds": "histogram",
}

# Temporal SDK (Core) metrics, as temporalio 1.35 exports them with PrometheusConfig defaults.
TEMPORAL_SDK_METRICS: dict[str, str] = {
    "temporal_workflow_completed": "counter",
    "temporal_workflow_failed": "counter",
    "temporal_workflow_canceled": "counter",
    "temporal_workflow_continue_as_new": "counter",
    "temporal_workflow_task_execution_failed": "counter",
    "temporal_activity_execution_failed": "counter",
    "temporal_activity_task_received": "counter",
    "temporal_request": "counter",
    "temporal_long_request": "counter",
    "temporal_sticky_cache_hit": "counter",
    "temporal_worker_start": "counter",
    "temporal_worker_task_slots_available": "gauge",
    "temporal_worker_task_slots_used": "gauge",
    "temporal_num_pollers": "gauge",
    "temporal_sticky_cache_size": "gauge",
    "temporal_workflow_endtoend_latency": "histogram",
    "temporal_workflow_task_schedule_to_start_latency": "histogram",
    "temporal_workflow_task_execution_latency": "histogram",
    "temporal_activity_schedule_to_start_latency": "histogram",
    "temporal_activity_execution_latency": "histogram",
    "temporal_request_latency": "histogram",
}

PROMETHEUS_BUILTIN = {"up": "gauge"}
KNOWN_METRICS = WORKER_METRICS | WEBHOOK_METRICS | TEMPORAL_SDK_METRICS | PROMETHEUS_BUILTIN
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "seedance.json"


def metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression selects (label values and functions left out)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    tokens = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_strings))
    return {t for t in tokens if t.startswith(("seedance_", "temporal_")) or t == "up"}


def unknown_series(expr: str) -> list[str]:
    """Names in `expr` that no declared metric exports (histograms only via their series)."""
    unknown = []
    for name in metric_names(expr):
        if KNOWN_METRICS.get(name) in ("counter", "gauge"):
            continue
        base = next((name[: -len(s)] for s in HISTOGRAM_SERIES if name.endswith(s)), "")
        if KNOWN_METRICS.get(base) != "histogram":
            unknown.append(name)
    return unknown


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    rules = load_yaml(DEPLOY / "prometheus" / "alerts.yml")
    return [rule for group in rules["groups"] for rule in group["rules"]]


def prometheus_config() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    return config


def scrape_job(name: str) -> dict[str, Any]:
    jobs = {j["job_name"]: j for j in prometheus_config()["scrape_configs"]}
    return jobs[name]


def test_prometheus_scrapes_every_worker_replica_on_its_metrics_port() -> None:
    """Replicas share a DNS name; DNS discovery finds each, a static target only one."""
    discovery = scrape_job("seedance-worker")["dns_sd_configs"][0]
    worker_env = environment(services()["worker"])
    assert discovery["names"] == ["worker"]
    assert discovery["type"] == "A"
    assert discovery["port"] == int(worker_env["WORKER_METRICS_PORT"])


def test_prometheus_scrapes_the_webhook_and_the_temporal_server() -> None:
    webhook_port = environment(services()["webhook"])["WEBHOOK_PORT"]
    assert scrape_job("seedance-webhook")["static_configs"][0]["targets"] == [
        f"webhook:{webhook_port}"
    ]
    server_port = environment(services()["temporal"])["PROMETHEUS_ENDPOINT"].rpartition(":")[2]
    assert scrape_job("temporal-server")["static_configs"][0]["targets"] == [
        f"temporal:{server_port}"
    ]


def test_prometheus_loads_the_alert_rules_it_is_given() -> None:
    prometheus = services()["prometheus"]
    for rule_file in prometheus_config()["rule_files"]:
        assert host_path_for(prometheus, rule_file).is_file(), rule_file
    config_arg = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    assert host_path_for(prometheus, config_arg.split("=", 1)[1]) == (
        DEPLOY / "prometheus" / "prometheus.yml"
    )


def test_grafana_provisions_the_dashboard_file() -> None:
    grafana = services()["grafana"]
    provisioning = host_path_for(grafana, "/etc/grafana/provisioning")
    providers = load_yaml(provisioning / "dashboards" / "seedance.yml")["providers"]
    assert len(providers) == 1
    folder = host_path_for(grafana, providers[0]["options"]["path"])
    assert folder == DEPLOY / "grafana" / "dashboards"
    assert (folder / "seedance.json").is_file()
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path_for(grafana, home) == DASHBOARD


def test_dashboard_uses_the_provisioned_prometheus() -> None:
    grafana = services()["grafana"]
    provisioning = host_path_for(grafana, "/etc/grafana/provisioning")
    (source,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in services()
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"], panel["title"]


def test_dashboard_is_valid_and_every_panel_queries_something() -> None:
    data = dashboard()
    assert data["uid"] and data["title"]
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    for panel in data["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert metric_names(target["expr"]), (panel["title"], target["expr"])


@pytest.mark.parametrize("expr", dashboard_exprs())
def test_dashboard_queries_only_declared_metrics(expr: str) -> None:
    assert unknown_series(expr) == []


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alerts_query_only_declared_metrics(rule: dict[str, Any]) -> None:
    assert metric_names(rule["expr"])
    assert unknown_series(rule["expr"]) == []
    assert rule["annotations"]["summary"]


def test_every_pipeline_metric_is_on_the_dashboard() -> None:
    """A declared name nobody looks at is a name the worker exports for nothing."""
    used = {n for e in dashboard_exprs() for n in metric_names(e)}
    for name, kind in (WORKER_METRICS | WEBHOOK_METRICS).items():
        series = {name + s for s in HISTOGRAM_SERIES} if kind == "histogram" else {name}
        assert used & series, f"{name} is declared but not on the dashboard"


def test_worker_metrics_are_the_ones_the_worker_defines() -> None:
    """The worker records through `core.metric_names`; a rename there must reach Grafana."""
    assert set(WORKER_METRICS) == set(worker_metric_names.ALL)


def test_dashboard_shows_the_temporal_sdk_health_metrics() -> None:
    used = {n for e in dashboard_exprs() for n in metric_names(e)}
    for name in (
        "temporal_workflow_completed",
        "temporal_activity_execution_failed",
        "temporal_worker_task_slots_available",
    ):
        assert name in used


def test_webhook_metrics_are_what_the_receiver_exports() -> None:
    """Checked against the real receiver's exposition, not against a copy of its names."""
    text = Metrics().render().decode()
    samples = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    for name, kind in WEBHOOK_METRICS.items():
        assert (name + "_bucket" if kind == "histogram" else name) in samples, name


def label_values(label: str) -> set[str]:
    exprs = dashboard_exprs() + [r["expr"] for r in alert_rules()]
    return {v for e in exprs for v in re.findall(rf'\b{label}="([^"]*)"', e)}


def test_label_values_in_queries_exist() -> None:
    """A misspelt outcome or result silently matches nothing."""
    assert label_values("outcome") <= {o.value for o in Outcome}
    assert label_values("result") <= {r.value for r in Result}
    jobs = {j["job_name"] for j in prometheus_config()["scrape_configs"]}
    assert label_values("job") <= jobs
    assert label_values("outcome") and label_values("result") and label_values("job")


def test_observability_configuration_is_mounted_read_only() -> None:
    """Prometheus' and Grafana's configuration come from the repository, read-only."""
    for name in ("prometheus", "grafana"):
        mounts = services()[name]["volumes"]
        for volume in mounts:
            if str(volume).startswith("./"):
                assert str(volume).endswith(":ro"), (name, volume)
    assert resolve(services()["grafana"]["environment"]["GF_USERS_ALLOW_SIGN_UP"]) == "false"
