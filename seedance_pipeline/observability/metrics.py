"""Project metrics recorded from activities through the SDK's metric meter, so they appear on
the worker's Prometheus endpoint beside the SDK's own (names in `core.metric_names`).

Outside an activity (a CLI `doctor` call, say) recording is a no-op.
"""

from __future__ import annotations

from temporalio import activity

from seedance_pipeline.core import metric_names as names


def provider_call(op: str, status: str, seconds: float) -> None:
    """The ProviderClient observer: one count and one latency sample per provider call."""
    if not activity.in_activity():
        return
    meter = activity.metric_meter()
    meter.create_counter(names.PROVIDER_CALLS, "provider API calls").add(
        1, {"op": op, "status": status}
    )
    meter.create_histogram_float(names.PROVIDER_CALL_SECONDS, "provider call latency", "s").record(
        seconds, {"op": op}
    )


def completion_to_storage(seconds: float, kind: str) -> None:
    if not activity.in_activity():
        return
    activity.metric_meter().create_histogram_float(
        names.COMPLETION_TO_STORAGE_SECONDS, "provider succeeded -> object committed", "s"
    ).record(max(0.0, seconds), {"kind": kind})


def reconcile_finding(route: str, kind: str, *, salvaged: bool) -> None:
    """One reconcile finding; `salvaged="false"` ones are what no automation fixes."""
    if not activity.in_activity():
        return
    activity.metric_meter().create_counter(
        names.RECONCILE_FINDINGS, "reconcile findings by kind, salvaged or not"
    ).add(1, {"route": route, "kind": kind, "salvaged": "true" if salvaged else "false"})
