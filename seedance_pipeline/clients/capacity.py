"""Reading the capacity gates (`starter.py capacity`): per route's account, what each model may
have in flight and what the gate has learned from the provider's refusals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.core.capacity import Gate, gate_id
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.workflows.capacity_gate import CapacityGateWorkflow


@dataclass(frozen=True)
class ModelView:
    route: str
    model_id: str
    in_flight: int
    ceiling: int
    """Configured concurrency + headroom: the most the gate lets it have at the provider."""
    waiting: int
    rpm_learned: float
    rpm_ceiling: int
    creates_last_minute: int
    refusals: dict[str, int]
    granted_total: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class GateView:
    route: str
    gate_id: str
    account: str
    started: bool
    """False when no job has asked this route's gate yet (its limits are the configured ones)."""
    queued_learned: float
    queued_ceiling: int
    queued_at_provider: int
    models: list[ModelView]

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "models": [m.as_dict() for m in self.models]}


async def gate_views(client: Client, settings: Settings) -> list[GateView]:
    """Every route's gate, read by query (a gate no job has used yet shows its ceilings)."""
    views = []
    for route in settings.routes:
        gid = gate_id(route, settings.capacity.scope)
        handle = client.get_workflow_handle(gid)
        try:
            gate: Gate | None = await handle.query(CapacityGateWorkflow.state)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            gate = None
        views.append(_view(settings, route, gid, gate))
    return views


def _view(settings: Settings, route: str, gid: str, gate: Gate | None) -> GateView:
    limits = settings.limits_for(route)
    if gate is None:
        return GateView(
            route=route,
            gate_id=gid,
            account=settings.route(route).account,
            started=False,
            queued_learned=float(limits.queued_per_account),
            queued_ceiling=limits.queued_per_account,
            queued_at_provider=0,
            models=[],
        )
    now = datetime.now(UTC)
    models = [
        ModelView(
            route=route,
            model_id=model_id,
            in_flight=sum(1 for h in gate.holders.values() if h.model_id == model_id),
            ceiling=state.limits.concurrency + gate.config.headroom_per_model,
            waiting=sum(1 for m in gate.waiting_ids.values() if m == model_id),
            rpm_learned=round(state.rpm_learned, 1),
            rpm_ceiling=state.limits.rpm,
            creates_last_minute=sum(1 for t in state.grants if (now - t).total_seconds() < 60),
            refusals=dict(state.refusals),
            granted_total=state.granted_total,
        )
        for model_id, state in gate.models.items()
    ]
    return GateView(
        route=route,
        gate_id=gid,
        account=settings.route(route).account,
        started=True,
        queued_learned=round(gate.queued_learned, 1),
        queued_ceiling=gate.config.queued_per_account,
        queued_at_provider=gate.queued_at_provider(),
        models=models,
    )
