"""Reading and steering the per-model breakers (`starter.py health`)."""

from __future__ import annotations

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.core.breaker import Breaker, BreakerConfig
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.workflows.model_health import ForceRequest, ModelHealthWorkflow, workflow_id


def _config(settings: Settings) -> BreakerConfig:
    return settings.breaker.thresholds()


async def breaker_states(client: Client, settings: Settings) -> dict[str, Breaker | None]:
    """Every configured model's breaker; None when no job has used the model yet."""
    states: dict[str, Breaker | None] = {}
    for alias in settings.models:
        handle = client.get_workflow_handle_for(
            ModelHealthWorkflow.run, workflow_id(alias, settings.breaker.scope)
        )
        try:
            states[alias] = await handle.query(ModelHealthWorkflow.state)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            states[alias] = None
    return states


async def force_breaker(client: Client, settings: Settings, alias: str, state: str) -> Breaker:
    """Trip (`open`) or reset (`closed`) a model's breaker; creates it if never used."""
    if alias not in settings.models:
        raise KeyError(f"unknown model {alias!r}; configured: {', '.join(settings.models)}")
    start = WithStartWorkflowOperation(
        ModelHealthWorkflow.run,
        Breaker(model=alias, config=_config(settings)),
        id=workflow_id(alias, settings.breaker.scope),
        task_queue=settings.temporal.entity_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return await client.execute_update_with_start_workflow(
        ModelHealthWorkflow.force, ForceRequest(state=state), start_workflow_operation=start
    )
