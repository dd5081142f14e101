"""Operator operations behind `starter.py list | extend | regenerate | doctor | setup`."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.adapters.ledger import open_ledger
from seedance_pipeline.adapters.object_store import open_store
from seedance_pipeline.adapters.provider_client import ProviderClient, ProviderError
from seedance_pipeline.clients.jobs import UnknownJob, handle_for, job_status
from seedance_pipeline.clients.temporal_client import TemporalUnavailable, connect
from seedance_pipeline.clients.temporal_setup import missing_search_attributes
from seedance_pipeline.core import search_attributes as sa
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


class Refused(RuntimeError):
    """The job refused the operation (its validator said why)."""


async def extend_job(client: Client, job_id: str, minutes: int) -> JobRecord:
    try:
        return await handle_for(client, job_id).execute_update(
            GenerationWorkflow.extend, ExtendRequest(minutes=minutes)
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        raise Refused(getattr(cause, "message", None) or str(cause)) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise UnknownJob(f"no running job with ID {job_id!r}") from None
        raise


# ---- regenerate --------------------------------------------------------------------------


@dataclass(frozen=True)
class Regeneration:
    request: GenerationRequest
    source: str
    warnings: list[str]


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


async def regeneration(
    client: Client | None,
    settings: Settings,
    source: str,
    model_id: str | None = None,
    same_seed: bool = False,
) -> Regeneration:
    """The exact request of a stored job (prompt, references, every parameter, seed, model ID
    with its date suffix), and warnings when that model ID left or rotated in config."""
    if source.endswith(".json") or source.startswith(("file:", "s3:", "/")):
        manifest = read_manifest(source, settings)
    else:
        if client is None:
            raise ValueError("a job ID needs Temporal; pass the manifest URI instead")
        record = await job_status(client, source)
        if not record.manifest_uri:
            raise ValueError(f"job {source} has no manifest yet")
        manifest = read_manifest(record.manifest_uri, settings)
    request = GenerationRequest.model_validate(manifest["request"])
    pinned = model_id or manifest.get("model_id")
    route = manifest.get("route") or request.route or settings.default_route
    alias = manifest.get("model_alias") or request.model
    warnings: list[str] = []
    found = settings.alias_for_model_id(pinned) if pinned else None
    if pinned and found is None:
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
    return Regeneration(request=request, source=source, warnings=warnings)


# ---- doctor ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


async def doctor(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    try:
        client = await connect()
        missing = await missing_search_attributes(client)
        checks.append(Check("temporal", True, "reachable"))
        checks.append(
            Check(
                "search attributes",
                not missing,
                "all registered" if not missing else f"missing: {', '.join(missing)}",
                "run `starter.py setup` (or `make up` for the embedded server)",
            )
        )
    except TemporalUnavailable as exc:
        checks.append(
            Check(
                "temporal",
                False,
                str(exc).split(" (")[0],
                "start it with `make up`, or set TEMPORAL_ADDRESS",
            )
        )
    checks.append(await _storage_check(settings))
    checks.append(_ledger_check(settings))
    checks += await _route_checks(settings)
    checks.append(Check("model IDs", True, "every model ID matches its route (checked at load)"))
    checks.append(await _webhook_check(settings))
    return checks


async def _storage_check(settings: Settings) -> Check:
    try:
        store = open_store(
            settings.storage.uri,
            s3_endpoint_url=settings.storage.s3_endpoint_url,
            s3_region=settings.storage.s3_region,
        )
        key = f"_doctor/{uuid.uuid4().hex}.txt"
        stored = await store.put_bytes(key, b"doctor", "text/plain")
        return Check("storage", True, f"writable ({stored.uri})")
    except Exception as exc:
        return Check(
            "storage",
            False,
            f"{settings.storage.uri}: {type(exc).__name__}: {exc}",
            "fix SEEDANCE_STORAGE__URI (a writable directory or s3://bucket/prefix) "
            "and its credentials",
        )


def _ledger_check(settings: Settings) -> Check:
    try:
        ledger = open_ledger(settings.ledger.url)
        ledger.close()
        return Check("ledger", True, "reachable")
    except Exception as exc:
        safe = settings.ledger.url.split("@")[-1]
        return Check(
            "ledger",
            False,
            f"{safe}: {type(exc).__name__}",
            "fix SEEDANCE_LEDGER__URL (sqlite:///path or postgresql://...)",
        )


async def _route_checks(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    async with httpx.AsyncClient(timeout=10) as http:
        provider = ProviderClient(http)
        for name, route in settings.routes.items():
            if route.api_key() is None:
                checks.append(
                    Check(
                        f"route {name}",
                        False,
                        f"no key in ${route.api_key_env}",
                        f"export {route.api_key_env}=... (unused routes can be ignored)",
                    )
                )
                continue
            try:
                await provider.list(route, name, page_size=1)
                checks.append(Check(f"route {name}", True, f"key accepted by {route.base_url}"))
            except ProviderError as exc:
                checks.append(
                    Check(
                        f"route {name}",
                        False,
                        f"{route.base_url}: {exc}",
                        f"check {route.api_key_env} and the route's base URL",
                    )
                )
    return checks


async def _webhook_check(settings: Settings) -> Check:
    cb = settings.callbacks
    if not cb.enabled:
        return Check(
            "callbacks", True, "off: jobs poll (set SEEDANCE_CALLBACKS__BASE_URL to use callbacks)"
        )
    if cb.secret() is None:
        return Check(
            "callbacks",
            False,
            f"no secret in ${cb.secret_env}",
            f"export {cb.secret_env}=$(openssl rand -hex 32) on worker and receiver",
        )
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.get(cb.base_url.rstrip("/") + "/healthz")
        ok = answer.status_code == 200
        return Check(
            "callbacks",
            ok,
            f"{cb.base_url} answered {answer.status_code}",
            "" if ok else "start the receiver (`python -m webhook`) at that URL",
        )
    except httpx.HTTPError as exc:
        return Check(
            "callbacks",
            False,
            f"{cb.base_url} unreachable ({type(exc).__name__})",
            "start the receiver (`python -m webhook`) or fix SEEDANCE_CALLBACKS__BASE_URL",
        )
