"""Attacks where the worker connects and writes: reference URLs that spell private, loopback,
link-local, shared (carrier-grade NAT, where some clouds serve instance metadata) or
IPv4-mapped addresses in other ways, a redirect from a public-looking reference onto the
worker's own network, a provider output URL that redirects off the configured hosts, and job
IDs that try to climb out of the storage prefix.

References are checked by the activity before any paid call (refused unless
`references.allow_private_hosts`); the copy step follows no redirect; object keys stay under
the store's root.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from seedance_pipeline.activities.references import ReferenceActivities, _refuse_private
from seedance_pipeline.activities.storage import StorageActivities, object_key
from seedance_pipeline.adapters.object_store import FileStore, UnsafeKey
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.models import (
    CheckReferencesInput,
    CopyOutputInput,
    GenerationRequest,
    Reference,
)
from seedance_pipeline.core.settings import Settings
from tests.webhook.support import serve

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)


class Hits:
    paths: list[str] = []


async def _png(request: Request) -> Response:
    Hits.paths.append(request.url.path)
    return Response(PNG, media_type="image/png")


async def _bounce(request: Request) -> Response:
    Hits.paths.append(request.url.path)
    return RedirectResponse(request.query_params["to"], status_code=302)


@pytest.fixture(scope="module")
def lan_server() -> Iterator[int]:
    """A server on loopback: the 'internal service' an attacker wants the worker to reach."""
    app = Starlette(routes=[Route("/img.png", _png), Route("/bounce", _bounce)])
    with serve(app) as url:
        yield int(url.rsplit(":", 1)[1])


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return load_settings(storage={"uri": str(tmp_path / "out")}, **overrides)


async def _check(settings: Settings, url: str) -> ApplicationError:
    request = GenerationRequest(prompt="ssrf", references=(Reference(url=url),))
    async with httpx.AsyncClient(timeout=5) as http:
        activities = ReferenceActivities(http, settings)
        with pytest.raises(ApplicationError) as info:
            await ActivityEnvironment().run(
                activities.check_references, CheckReferencesInput(job_id="j", request=request)
            )
    return info.value


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "127.1",
        "2130706433",  # 127.0.0.1 as one decimal number
        "0x7f000001",
        "0.0.0.0",  # noqa: S104 (a URL host under test, not a bind address)
        "[::1]",
        "[::ffff:127.0.0.1]",
    ],
)
async def test_loopback_in_any_spelling_is_refused_before_a_request(
    tmp_path: Path, lan_server: int, host: str
) -> None:
    Hits.paths.clear()
    error = await _check(_settings(tmp_path), f"http://{host}:{lan_server}/img.png")
    assert error.type == "ReferenceInvalid" and error.non_retryable
    assert "private address" in error.message, error.message
    assert Hits.paths == [], "the worker connected to its own network"


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # AWS/GCP/Azure instance metadata
        "100.96.0.96",  # Volcengine instance metadata (shared address space 100.64/10)
        "100.100.100.200",  # Alibaba Cloud instance metadata
        "198.18.0.1",  # benchmarking range
        "[fe80::1]",
        "[fc00::1]",
    ],
)
async def test_private_shared_and_metadata_addresses_are_refused(
    tmp_path: Path, address: str
) -> None:
    error = await _check(_settings(tmp_path), f"http://{address}/latest/meta-data/")
    assert error.type == "ReferenceInvalid" and "private address" in error.message, error.message


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"])
async def test_public_addresses_pass_the_host_check(tmp_path: Path, address: str) -> None:
    """The check refuses by address class, not by accident: routable hosts get through."""
    await _refuse_private(address, _settings(tmp_path).references)


async def test_a_redirect_onto_the_private_network_is_refused(
    tmp_path: Path, lan_server: int
) -> None:
    """Allowed first hop (private hosts allowed for this one server), then a redirect to the
    metadata address: the host check runs again on the hop and refuses it."""
    settings = _settings(tmp_path)
    target = "http://169.254.169.254/latest/meta-data/iam"
    bounce = f"http://127.0.0.1:{lan_server}/bounce?to={target}"
    allowed = settings.model_copy(
        update={"references": settings.references.model_copy(update={"allow_private_hosts": True})}
    )
    Hits.paths.clear()
    async with httpx.AsyncClient(timeout=2) as http:
        activities = ReferenceActivities(http, allowed)
        # With private hosts allowed the hop is followed (and times out or fails to connect):
        with pytest.raises(ApplicationError):
            await ActivityEnvironment().run(
                activities.check_references,
                CheckReferencesInput(
                    job_id="j",
                    request=GenerationRequest(prompt="r", references=(Reference(url=bounce),)),
                ),
            )
    assert Hits.paths == ["/bounce"]
    error = await _check(settings, bounce)
    assert "private address" in error.message


async def test_copy_does_not_follow_a_redirect_off_the_output_hosts(
    tmp_path: Path, lan_server: int
) -> None:
    """127.0.0.1 is an allowed output host here; `localhost` (same machine, other name) is
    not: the provider URL redirecting there is not followed and nothing is stored."""
    settings = _settings(tmp_path, routes={"byteplus": {"output_hosts": ["127.0.0.1"]}})
    Hits.paths.clear()
    url = f"http://127.0.0.1:{lan_server}/bounce?to=http://localhost:{lan_server}/img.png"
    async with httpx.AsyncClient() as http:
        storage = StorageActivities(http, FileStore(tmp_path / "out"), settings)
        copy = CopyOutputInput(
            job_id="j1", route="byteplus", kind="video", url=url, requested_at=datetime.now(UTC)
        )
        with pytest.raises(ApplicationError):
            await ActivityEnvironment().run(storage.copy_output, copy)
    assert Hits.paths == ["/bounce"]
    assert not list((tmp_path / "out").rglob("video.mp4"))


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=40), st.sampled_from(["video.mp4", "last_frame.png", "manifest.json"]))
def test_no_job_id_escapes_the_store_root(job_id: str, name: str) -> None:
    root = Path("/tmp/seedance-security-store")
    store = FileStore(root)
    try:
        key = object_key(job_id, datetime(2026, 11, 24, tzinfo=UTC), name)
    except UnsafeKey:
        return
    path = Path(store.uri(key).removeprefix("file://"))
    assert root.resolve() in path.parents
    assert key.startswith("2026/11/24/") and key.endswith("/" + name)
