"""Operator operations behind `starter.py list | extend | regenerate`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from seedance_pipeline.clients.failures import Refused, root_message
from seedance_pipeline.clients.jobs import (
    QUERY_TIMEOUT,
    JobFinished,
    handle_for,
    job_status,
    known_job,
    require_running,
    unanswered,
    why_unanswered,
)
from seedance_pipeline.clients.pollers import require_worker
from seedance_pipeline.core import search_attributes as sa
from seedance_pipeline.core.error_types import JOB_FINISHED
from seedance_pipeline.core.models import ExtendRequest, GenerationRequest, JobRecord
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.workflows.generation import GenerationWorkflow

# ---- list --------------------------------------------------------------------------------


def list_query(
    state: str | None = None,
    outcome: str | None = None,
    model: str | None = None,
    since: date | None = None,
) -> str:
    """A visibility query over jobs; values are quoted so a filter cannot inject a clause."""
    parts = ["WorkflowType = 'GenerationWorkflow'"]
    for key, value in (
        (sa.JOB_STATE.name, state),
        (sa.OUTCOME.name, outcome),
        (sa.MODEL.name, model),
    ):
        if value:
            parts.append(f"{key} = '{_quote(value)}'")
    if since:
        parts.append(f"StartTime >= '{since.isoformat()}T00:00:00Z'")
    return " AND ".join(parts)


def _quote(value: str) -> str:
    if not value.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise ValueError(f"filter value {value!r}: letters, digits, - _ . only")
    return value


async def list_jobs(client: Client, query: str, limit: int = 200) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    async for execution in client.list_workflows(query, limit=limit):
        attrs = execution.typed_search_attributes
        cost = attrs.get(sa.COST_USD)
        rows.append(
            {
                "job_id": execution.id,
                "status": execution.status.name if execution.status else None,
                "state": attrs.get(sa.JOB_STATE),
                "outcome": attrs.get(sa.OUTCOME),
                "model": attrs.get(sa.MODEL),
                "model_id": attrs.get(sa.MODEL_ID),
                "provider_task_id": attrs.get(sa.PROVIDER_TASK_ID),
                "cost": cost if cost is not None else attrs.get(sa.COST_CNY),
                "error_code": attrs.get(sa.ERROR_CODE),
                "started": execution.start_time.isoformat() if execution.start_time else None,
            }
        )
    return rows


# ---- extend ------------------------------------------------------------------------------


async def extend_job(client: Client, job_id: str, minutes: int) -> JobRecord:
    """Move a running job's deadline; Refused with the job's reason, JobFinished when done."""
    # An update waits for a worker to accept it: without one it would hang, not answer.
    await require_worker(client, await require_running(client, job_id))
    try:
        with known_job(job_id, running=True):
            return await handle_for(client, job_id).execute_update(
                GenerationWorkflow.extend, ExtendRequest(minutes=minutes), rpc_timeout=QUERY_TIMEOUT
            )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == JOB_FINISHED:
            # Its outcome is decided while its workflow still closes (a follower takes its task).
            raise JobFinished(job_id, str(cause.details[0]), None) from None
        raise Refused(root_message(cause)) from None
    except RPCError as exc:
        if not unanswered(exc):
            raise
        raise await why_unanswered(client, job_id, "deadline update") from None


# ---- regenerate --------------------------------------------------------------------------


@dataclass(frozen=True)
class Regeneration:
    request: GenerationRequest
    source: str
    warnings: list[str]
    unknown_model_id: str | None = None
    """The pinned model ID is in no route's config: the provider may have retired it."""


def read_manifest(uri: str, settings: Settings) -> dict[str, Any]:
    parts = urlsplit(uri)
    if parts.scheme == "s3":
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=settings.storage.s3_endpoint_url or None,
            region_name=settings.storage.s3_region,
        )
        body = s3.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"].read()
        data: dict[str, Any] = json.loads(body)
        return data
    path = Path(parts.path) if parts.scheme == "file" else Path(uri)
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def is_manifest_source(source: str) -> bool:
    """A manifest path or URI rather than a job ID."""
    return source.endswith(".json") or source.startswith(("file:", "s3:", "/", "./"))


async def regeneration(
    client: Client | None,
    settings: Settings,
    source: str,
    model_id: str | None = None,
    same_seed: bool = False,
) -> Regeneration:
    """The exact request of a stored job (prompt, references, every parameter, seed, model ID
    with its date suffix); `unknown_model_id` when that ID left config (or never was in it)."""
    if is_manifest_source(source):
        manifest = read_manifest(source, settings)
    else:
        if client is None:
            raise ValueError("a job ID needs Temporal; pass the manifest URI instead")
        record = await job_status(client, source)
        if not record.manifest_uri:
            raise ValueError(f"job {source} has no manifest yet")
        manifest = read_manifest(record.manifest_uri, settings)
    try:
        request = GenerationRequest.model_validate(manifest["request"])
    except (KeyError, TypeError, ValidationError):
        raise ValueError(f"{source}: not a job manifest (no valid 'request')") from None
    pinned = model_id or manifest.get("model_id")
    route = manifest.get("route") or request.route or settings.default_route
    alias = manifest.get("model_alias") or request.model
    warnings: list[str] = []
    unknown = None
    found = settings.alias_for_model_id(pinned) if pinned else None
    if pinned and found is None:
        unknown = pinned
        current = settings.models[alias].ids.get(route) if alias in settings.models else None
        warnings.append(
            f"model ID {pinned} is no longer in config"
            + (f" (model {alias!r} on {route} is now {current})" if current else "")
        )
    update: dict[str, Any] = {"model_id": pinned, "model": alias, "route": route}
    used_seed = manifest.get("parameters", {}).get("seed")
    if same_seed and request.seed == -1 and used_seed is not None:
        update["seed"] = used_seed  # the seed the provider drew for the original
    request = request.model_copy(update=update)
    return Regeneration(request=request, source=source, warnings=warnings, unknown_model_id=unknown)
