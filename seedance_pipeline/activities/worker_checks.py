"""The worker's own checks, answered through Temporal for `starter.py doctor`.

Only the worker can say whether the worker can work: its keys, its storage, its ledger, the
receiver it gives the provider as callback URL, the queues it polls. A CLI in another shell
has other (or no) keys and other settings, so checking there judged the wrong process.
Keys are reported present or absent and proven with one free list call; a key's value never
appears in a check (the provider client scrubs it even from the provider's own error text).

`storage_check` and `ledger_check` also run once when the worker starts: a worker that cannot
store a video or record a cost would take paid jobs it cannot finish.
"""

from __future__ import annotations

import asyncio

import httpx
from temporalio import activity
from temporalio.client import Client

from seedance_pipeline.adapters.ledger_schema import Ledger, redact
from seedance_pipeline.adapters.object_store import ObjectStore
from seedance_pipeline.adapters.provider_client import ProviderClient, ProviderError
from seedance_pipeline.adapters.task_queues import PollerKind, pollers
from seedance_pipeline.core.checks import (
    Check,
    WorkerChecksInput,
    WorkerReport,
    fail,
    models_digest,
    ok,
    warn,
)
from seedance_pipeline.core.settings import Settings

PROBE_KEY = "_doctor/probe.txt"
"""One fixed key inside the storage prefix: every check overwrites it, nothing piles up."""
WORKER_CHECKS = "worker_checks"
PROBE_TIMEOUT = 10.0


async def storage_check(store: ObjectStore, uri: str) -> Check:
    try:
        stored = await store.put_bytes(PROBE_KEY, b"seedance doctor probe\n", "text/plain")
    except Exception as exc:  # any backend or credential error is the verdict itself
        return fail(
            "storage",
            f"{uri}: cannot write ({type(exc).__name__}: {exc})",
            "fix SEEDANCE_STORAGE__URI (a writable directory or s3://bucket/prefix) and its "
            "credentials where the worker runs",
        )
    return ok("storage", f"writable ({stored.uri})")


async def ledger_check(ledger: Ledger, url: str) -> Check:
    try:
        version = await asyncio.to_thread(ledger.schema_version)
    except Exception as exc:  # any driver error is the verdict itself
        return fail(
            "ledger",
            f"{redact(url)}: {type(exc).__name__}",
            "fix SEEDANCE_LEDGER__URL (sqlite:///path or postgresql://...) where the worker runs",
        )
    return ok("ledger", f"reachable ({redact(url)}, schema {version})")


async def route_checks(settings: Settings, provider: ProviderClient, probe: bool) -> list[Check]:
    checks: list[Check] = []
    for name, route in settings.routes.items():
        label = f"route {name}"
        if route.api_key() is None:
            detail = f"no key in ${route.api_key_env}"
            fix = f"export {route.api_key_env}=... where the worker runs"
            if name == settings.default_route:
                checks.append(fail(label, f"{detail}, and it is the default route", fix))
            else:
                checks.append(warn(label, f"{detail}: jobs asking for it fail", fix))
            continue
        if not probe:
            checks.append(ok(label, f"key present in ${route.api_key_env}"))
            continue
        try:
            await asyncio.wait_for(provider.list(route, name, page_size=1), PROBE_TIMEOUT)
        except TimeoutError:
            checks.append(
                fail(label, f"{route.base_url} did not answer in {PROBE_TIMEOUT:.0f} s", "")
            )
            continue
        except ProviderError as exc:
            checks.append(
                fail(
                    label,
                    f"{route.base_url}: {type(exc).__name__}: {exc}",
                    f"check {route.api_key_env} and the route's base URL",
                )
            )
            continue
        checks.append(ok(label, f"key in ${route.api_key_env} accepted by {route.base_url}"))
    return checks


async def callbacks_check(settings: Settings, http: httpx.AsyncClient) -> Check:
    cb = settings.callbacks
    if not cb.enabled:
        return ok("callbacks", "off: jobs poll (set SEEDANCE_CALLBACKS__BASE_URL to use them)")
    if cb.secret() is None:
        return fail(
            "callbacks",
            f"on ({cb.base_url}) but no secret in ${cb.secret_env}",
            f"export {cb.secret_env}=$(openssl rand -hex 32) for worker and receiver alike",
        )
    url = cb.base_url.rstrip("/") + "/healthz"
    try:
        answer = await http.get(url, timeout=5)
    except httpx.HTTPError as exc:
        return fail(
            "callbacks",
            f"on, but {cb.base_url} is unreachable from the worker ({type(exc).__name__})",
            "start the receiver (`python -m seedance_pipeline.webhook`) or fix "
            "SEEDANCE_CALLBACKS__BASE_URL",
        )
    if answer.status_code != 200:
        return fail(
            "callbacks",
            f"on, but {url} answered {answer.status_code}",
            "point SEEDANCE_CALLBACKS__BASE_URL at the receiver",
        )
    return ok("callbacks", f"on: the receiver at {cb.base_url} answers the worker")


class WorkerCheckActivities:
    def __init__(
        self,
        client: Client,
        settings: Settings,
        http: httpx.AsyncClient,
        provider: ProviderClient,
        store: ObjectStore,
        ledger: Ledger,
    ) -> None:
        self._client = client
        self._settings = settings
        self._http = http
        self._provider = provider
        self._store = store
        self._ledger = ledger

    @activity.defn(name=WORKER_CHECKS)
    async def worker_checks(self, data: WorkerChecksInput) -> WorkerReport:
        """Every check with this worker's settings, and the queues Temporal lists it on."""
        settings = self._settings
        activity.logger.info("doctor checks asked by %s", data.requested_by or "someone")
        checks = await route_checks(settings, self._provider, data.probe_provider)
        checks.append(await storage_check(self._store, settings.storage.uri))
        checks.append(await ledger_check(self._ledger, settings.ledger.url))
        checks.append(await callbacks_check(settings, self._http))
        polled = await self._polled()
        checks.append(self._queues_check(polled))
        return WorkerReport(
            identity=self._client.identity,
            job_queue=settings.temporal.task_queue,
            submit_queue=settings.temporal.submit_task_queue,
            health_queue=settings.temporal.entity_queue,
            polled=polled,
            checks=checks,
            models_digest=models_digest(settings),
        )

    def _needs(self) -> dict[str, tuple[PollerKind, ...]]:
        t = self._settings.temporal
        return {
            t.task_queue: ("workflow", "activity"),
            t.submit_task_queue: ("activity",),
            t.entity_queue: ("workflow",),
        }

    async def _polled(self) -> dict[str, list[str]]:
        me = self._client.identity
        polled: dict[str, list[str]] = {}
        for queue, kinds in self._needs().items():
            polled[queue] = [
                kind
                for kind in kinds
                if any(p.identity == me for p in await pollers(self._client, queue, kind))
            ]
        return polled

    def _queues_check(self, polled: dict[str, list[str]]) -> Check:
        missing = [
            f"{queue} ({kind})"
            for queue, kinds in self._needs().items()
            for kind in kinds
            if kind not in polled.get(queue, [])
        ]
        listed = ", ".join(f"{q} ({'+'.join(k)})" for q, k in polled.items() if k)
        if missing:
            return fail(
                "queues",
                f"polls {listed or 'nothing'}; not {', '.join(missing)}",
                "restart the worker; see its log for why a worker stopped",
            )
        return ok("queues", f"polls {listed}")
