"""API fixtures: the whole pipeline (dev server, emulator, webhook receiver, workers) from
`tests/pipeline/conftest.py`, two tenants, and the API itself served on loopback.

`api` yields an `ApiEnv` whose clients are the project's own typed client, so every test
goes through real HTTP, real FastAPI, real Temporal and the real worker.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from seedance_pipeline.api_client import AsyncSeedanceClient
from tests.adapters.storage.conftest import moto_endpoint  # noqa: F401 (fixture re-exported)
from tests.api.support import TenantKeys, make_tenant, running_api
from tests.pipeline.conftest import (  # noqa: F401 (fixtures re-exported for this directory)
    Pipeline,
    PipelineFactory,
    emulator,
    pipeline_factory,
    webhook_url,
)


@dataclass
class ApiEnv:
    url: str
    pipeline: Pipeline
    acme: TenantKeys
    globex: TenantKeys
    client: AsyncSeedanceClient
    """acme's client."""
    other: AsyncSeedanceClient
    """globex's client."""


def api_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], dict[str, TenantKeys]]:
    # Unique names: the dev server (and its visibility) is shared by the whole session.
    run = uuid.uuid4().hex[:6]
    acme, acme_cfg = make_tenant(f"acme-{run}", tmp_path, monkeypatch)
    globex, globex_cfg = make_tenant(f"globex-{run}", tmp_path, monkeypatch)
    api = {
        "tenants": {acme.name: acme_cfg, globex.name: globex_cfg},
        # The test's webhook receiver listens on loopback.
        "allow_private_webhook_hosts": True,
    }
    return api, {"acme": acme, "globex": globex}


ApiFactory = Callable[..., contextlib.AbstractAsyncContextManager[ApiEnv]]


@pytest_asyncio.fixture
async def api_factory(
    pipeline_factory: PipelineFactory,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> ApiFactory:
    """`api_factory(**settings overrides)`: the pipeline and the API with other settings."""

    @contextlib.asynccontextmanager
    async def make(
        acme_budgets: dict[str, Any] | None = None, **overrides: Any
    ) -> AsyncIterator[ApiEnv]:
        """`acme_budgets`: caps of the first tenant per route (`api.tenants.<t>.budgets`)."""
        api_settings, tenants = api_overrides(tmp_path, monkeypatch)
        if acme_budgets:
            api_settings["tenants"][tenants["acme"].name]["budgets"] = acme_budgets
        extra = dict(overrides.pop("api", {}))
        async with _running(pipeline_factory, {**api_settings, **extra}, tenants, overrides) as env:
            yield env

    return make


@pytest_asyncio.fixture
async def api(api_factory: ApiFactory) -> AsyncIterator[ApiEnv]:
    async with api_factory() as env:
        yield env


@contextlib.asynccontextmanager
async def _running(
    pipeline_factory: PipelineFactory,  # noqa: F811
    api_settings: dict[str, Any],
    tenants: dict[str, TenantKeys],
    overrides: dict[str, Any],
) -> AsyncIterator[ApiEnv]:
    async with pipeline_factory(api=api_settings, **overrides) as pipeline:
        target = pipeline.client.service_client.config.target_host
        with running_api(pipeline.settings, target) as url:
            async with (
                AsyncSeedanceClient(url, tenants["acme"].key) as acme_client,
                AsyncSeedanceClient(url, tenants["globex"].key) as globex_client,
            ):
                yield ApiEnv(
                    url=url,
                    pipeline=pipeline,
                    acme=tenants["acme"],
                    globex=tenants["globex"],
                    client=acme_client,
                    other=globex_client,
                )
