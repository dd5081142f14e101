"""Contract tests for the provider endpoints: shapes, codes, auth, headers, IDs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from seedance_pipeline.emulator.testing import EmulatorHandle
from tests.emulator.conftest import (
    CREATE,
    M10_PRO,
    M20,
    M20_VE,
    SLOW,
    body,
    create,
    get,
    wait_status,
)

ID_RE = re.compile(r"^cgt-(\d{14})-[a-z0-9]{5}$")
REQUEST_ID_RE = re.compile(r"Request id: 02\d{13}[0-9a-f]{38}$")


async def test_create_returns_id_in_provider_format(client: httpx.AsyncClient) -> None:
    before = datetime.now(UTC)
    resp = await client.post(CREATE, json=body())
    assert resp.status_code == 200
    data = resp.json()
    assert set(data) == {"id"}
    m = ID_RE.match(data["id"])
    assert m is not None, data["id"]
    stamp = datetime.strptime(m.group(1), "%Y%m%d%H%M%S").replace(
        tzinfo=datetime.now(UTC).astimezone().tzinfo
    )
    # The timestamp is Beijing time (UTC+8).
    beijing = (before + timedelta(hours=8)).replace(tzinfo=None)
    assert abs((stamp.replace(tzinfo=None) - beijing).total_seconds()) < 5


async def test_create_echoes_safety_identifier(client: httpx.AsyncClient) -> None:
    resp = await client.post(CREATE, json=body(safety_identifier="user-42"))
    assert resp.status_code == 200
    assert resp.json()["safety_identifier"] == "user-42"
    task = await get(client, resp.json()["id"])
    assert task["safety_identifier"] == "user-42"


async def test_ids_are_unique(client: httpx.AsyncClient) -> None:
    ids = {await create(client, body()) for _ in range(20)}
    assert len(ids) == 20


async def test_query_object_shape_while_queued(client: httpx.AsyncClient) -> None:
    task_id = await create(client, body(SLOW, resolution="480p", ratio="1:1", duration=3))
    task = await get(client, task_id)
    assert task["status"] == "queued"
    assert task["id"] == task_id
    assert task["model"] == SLOW
    assert task["error"] is None
    assert "content" not in task
    assert task["usage"] == {"completion_tokens": 0, "total_tokens": 0}
    assert isinstance(task["created_at"], int) and task["created_at"] == task["updated_at"]
    assert 0 <= task["seed"] <= 2**32 - 1
    assert task["resolution"] == "480p"
    assert task["ratio"] == "1:1"
    assert task["duration"] == 3 and "frames" not in task
    assert task["framespersecond"] == 24
    assert task["service_tier"] == "default"
    assert task["execution_expires_after"] == 172800
    assert task["draft"] is False
    assert task["priority"] == 0
    assert "generate_audio" not in task  # 1.0 has no audio
    assert "safety_identifier" not in task


async def test_succeeded_object_shape(client: httpx.AsyncClient) -> None:
    task_id = await create(
        client,
        body(
            M20,
            resolution="720p",
            ratio="16:9",
            duration=5,
            seed=1234,
            priority=3,
            return_last_frame=True,
            generate_audio=False,
        ),
    )
    task = await wait_status(client, task_id, "succeeded")
    assert task["error"] is None
    assert set(task["content"]) == {"video_url", "last_frame_url"}
    assert "/dreamina-seedance-2-0/021" in task["content"]["video_url"]
    assert task["usage"] == {"completion_tokens": 108900, "total_tokens": 108900}
    assert task["seed"] == 1234
    assert task["priority"] == 3
    assert task["generate_audio"] is False
    assert task["updated_at"] >= task["created_at"]


async def test_volcengine_id_is_accepted_and_echoed(client: httpx.AsyncClient) -> None:
    task = await get(client, await create(client, body(M20_VE)))
    assert task["model"] == M20_VE
    assert task["generate_audio"] is True  # 2.0 default


async def test_seed_minus_one_becomes_random(client: httpx.AsyncClient) -> None:
    seeds = set()
    for _ in range(3):
        task = await get(client, await create(client, body(seed=-1)))
        assert 0 <= task["seed"] <= 2**32 - 1
        seeds.add(task["seed"])
    assert len(seeds) > 1


async def test_get_unknown_task_is_404_not_found(client: httpx.AsyncClient) -> None:
    resp = await client.get(f"{CREATE}/cgt-20250101000000-zzzzz")
    assert resp.status_code == 404
    err = resp.json()["error"]
    assert err["code"] == "NotFound"
    assert err["type"] == "NotFound"
    assert err["message"].startswith("The request failed because")
    assert REQUEST_ID_RE.search(err["message"])


async def test_unknown_model_is_404(client: httpx.AsyncClient) -> None:
    resp = await client.post(CREATE, json=body("seedance-9-9-nope-000000"))
    assert resp.status_code == 404
    err = resp.json()["error"]
    assert err["code"] == "InvalidEndpointOrModel.NotFound"
    assert err["param"] == "model"


# -- auth -------------------------------------------------------------------------


async def test_missing_key_is_401_with_provider_body(emu: EmulatorHandle) -> None:
    async with httpx.AsyncClient(base_url=emu.api_base) as c:
        resp = await c.post(CREATE, json=body())
    assert resp.status_code == 401
    err = resp.json()["error"]
    assert err["code"] == "AuthenticationError"
    assert err["type"] == "Unauthorized"
    assert REQUEST_ID_RE.search(err["message"])
    assert resp.headers["x-request-id"] in err["message"]


async def test_every_api_route_needs_a_valid_key(emu: EmulatorHandle) -> None:
    bad = {"Authorization": "Bearer nope"}
    async with httpx.AsyncClient(base_url=emu.api_base, headers=bad) as c:
        answers = [
            await c.post(CREATE, json=body()),
            await c.get(CREATE),
            await c.get(f"{CREATE}/cgt-20250101000000-aaaaa"),
            await c.delete(f"{CREATE}/cgt-20250101000000-aaaaa"),
        ]
    assert [r.status_code for r in answers] == [401] * 4
    assert all(r.json()["error"]["code"] == "AuthenticationError" for r in answers)
    async with httpx.AsyncClient(
        base_url=emu.api_base, headers={"Authorization": "Basic ek-emulator-local"}
    ) as c:
        assert (await c.get(CREATE)).status_code == 401


async def test_second_configured_key_and_lowercase_scheme(emu: EmulatorHandle) -> None:
    async with httpx.AsyncClient(
        base_url=emu.api_base, headers={"Authorization": "bearer ek-second"}
    ) as c:
        resp = await c.post(CREATE, json=body())
    assert resp.status_code == 200


# -- headers --------------------------------------------------------------------------


async def test_client_request_id_is_echoed_and_request_id_sent(client: httpx.AsyncClient) -> None:
    rid = "20260101120000abcdefghijABCDEFGHIJ"
    ok = await client.post(CREATE, json=body(), headers={"X-Client-Request-Id": rid})
    err = await client.post(CREATE, json={}, headers={"X-Client-Request-Id": rid})
    plain = await client.get(CREATE)
    assert ok.headers["x-client-request-id"] == rid
    assert err.status_code == 400 and err.headers["x-client-request-id"] == rid
    assert "x-client-request-id" not in plain.headers
    for resp in (ok, err, plain):
        assert re.fullmatch(r"02\d{13}[0-9a-f]{38}", resp.headers["x-request-id"])
    assert len({ok.headers["x-request-id"], err.headers["x-request-id"]}) == 2


async def test_sdk_headers_are_accepted_and_recorded(emu: EmulatorHandle) -> None:
    headers = {
        **emu.auth_headers,
        "User-Agent": "byteplus-sdk-python/1.0.0",
        "Accept": "application/json",
        "X-Client-Request-Id": "20260101120000ABCDEFGHIJabcdefghij",
        "X-Project-Name": "default",
    }
    async with httpx.AsyncClient(base_url=emu.api_base, headers=headers) as c:
        resp = await c.post(CREATE, json=body())
    assert resp.status_code == 200
    (task,) = await emu.atasks()
    assert task["user_agent"] == "byteplus-sdk-python/1.0.0"
    assert task["client_request_id"] == "20260101120000ABCDEFGHIJabcdefghij"


# -- list ---------------------------------------------------------------------------


async def test_list_newest_first_with_pagination(client: httpx.AsyncClient) -> None:
    ids = [await create(client, body(SLOW)) for _ in range(5)]
    resp = await client.get(CREATE, params={"page_num": 1, "page_size": 2})
    assert resp.status_code == 200
    data = resp.json()
    assert data["total"] == 5
    assert [t["id"] for t in data["items"]] == ids[::-1][:2]
    page3 = (await client.get(CREATE, params={"page_num": 3, "page_size": 2})).json()
    assert [t["id"] for t in page3["items"]] == [ids[0]]
    page4 = (await client.get(CREATE, params={"page_num": 4, "page_size": 2})).json()
    assert page4 == {"total": 5, "items": []}
    assert set(data["items"][0]) >= {"id", "model", "status", "usage", "created_at"}


async def test_list_page_bounds_are_validated(client: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 501}, "page_size"),
        ({"page_num": 0}, "page_num"),
        ({"page_num": "x"}, "page_num"),
        ({"filter.status": "done"}, "filter.status"),
        ({"filter.service_tier": "batch"}, "filter.service_tier"),
    ]
    for params, param in cases:
        resp = await client.get(CREATE, params=params)
        assert resp.status_code == 400, params
        assert resp.json()["error"]["code"] == "InvalidParameter"
        assert resp.json()["error"]["param"] == param
    assert (await client.get(CREATE, params={"page_size": 500})).status_code == 200


async def test_list_filters(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    slow = [await create(client, body(SLOW)) for _ in range(2)]
    fast = await create(client, body(M10_PRO, service_tier="flex"))
    other = await create(client, body(M20))
    await wait_status(client, fast, "succeeded")
    await wait_status(client, other, "succeeded")

    async def ids(params: Any) -> list[str]:
        resp = await client.get(CREATE, params=params)
        assert resp.status_code == 200
        return [t["id"] for t in resp.json()["items"]]

    assert set(await ids({"filter.status": "queued"})) == set(slow)
    assert set(await ids({"filter.status": "succeeded"})) == {fast, other}
    assert await ids({"filter.model": M10_PRO}) == [fast]
    assert await ids({"filter.service_tier": "flex"}) == [fast]
    assert set(await ids({"filter.service_tier": "default"})) == {*slow, other}
    assert set(await ids([("filter.task_ids", slow[0]), ("filter.task_ids", other)])) == {
        slow[0],
        other,
    }
    assert await ids({"filter.status": "queued", "filter.model": M20}) == []


async def test_list_and_get_only_cover_the_retention_window(
    emu: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    """24 h by default (section 0, C10: the tutorial's figure, the stricter of the two)."""
    old = await create(client, body())
    await emu.aadvance_clock(86400 - 10)
    recent = await create(client, body())
    assert (await client.get(f"{CREATE}/{old}")).status_code == 200
    await emu.aadvance_clock(11)
    assert (await client.get(f"{CREATE}/{old}")).status_code == 404
    listing = (await client.get(CREATE)).json()
    assert [t["id"] for t in listing["items"]] == [recent]
    assert listing["total"] == 1
    admin_ids = [t["id"] for t in await emu.atasks()]
    assert admin_ids == [old, recent]  # the admin view keeps everything


# -- delete ---------------------------------------------------------------------------


async def test_delete_queued_task_cancels_it(
    emu: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    task_id = await create(client, body(SLOW))
    resp = await client.delete(f"{CREATE}/{task_id}")
    assert resp.status_code == 200
    assert resp.json() == {}
    task = await get(client, task_id)
    assert task["status"] == "cancelled"
    listed = (await client.get(CREATE, params={"filter.status": "cancelled"})).json()
    assert [t["id"] for t in listed["items"]] == [task_id]
    # Cancelling again is refused.
    again = await client.delete(f"{CREATE}/{task_id}")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "InvalidParameter"
    # The clock moving on does not start it, and after 24 h the record is gone.
    await emu.aadvance_clock(1000)
    assert (await get(client, task_id))["status"] == "cancelled"
    await emu.aadvance_clock(86400)
    assert (await client.get(f"{CREATE}/{task_id}")).status_code == 404


async def test_delete_running_task_is_refused(
    emu: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    task_id = await create(client, body(SLOW))
    await emu.aadvance_clock(150)
    assert (await get(client, task_id))["status"] == "running"
    resp = await client.delete(f"{CREATE}/{task_id}")
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["code"] == "InvalidParameter"
    assert err["type"] == "BadRequest"
    assert (await get(client, task_id))["status"] == "running"


async def test_delete_finished_task_removes_record(
    emu: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    task_id = await create(client, body())
    await wait_status(client, task_id, "succeeded")
    resp = await client.delete(f"{CREATE}/{task_id}")
    assert resp.status_code == 200 and resp.json() == {}
    assert (await client.get(f"{CREATE}/{task_id}")).status_code == 404
    assert (await client.get(CREATE)).json()["total"] == 0
    assert (await client.delete(f"{CREATE}/{task_id}")).status_code == 404
    (admin,) = await emu.atasks()
    assert admin["deleted"] is True
    assert admin["status"] == "succeeded"
    assert admin["billed_tokens"] > 0


async def test_delete_unknown_task_is_404(client: httpx.AsyncClient) -> None:
    resp = await client.delete(f"{CREATE}/cgt-20250101000000-abcde")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "NotFound"


# -- admin -----------------------------------------------------------------------------


async def test_admin_tasks_shows_request_and_billing(
    emu: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    payload = body(M20, callback_url="http://127.0.0.1:9/cb", resolution="480p", duration=4)
    task_id = await create(client, payload)
    await wait_status(client, task_id, "succeeded")
    (task,) = await emu.atasks()
    assert task["id"] == task_id
    assert task["model"] == M20
    assert task["status"] == "succeeded"
    assert task["callback_url"] == "http://127.0.0.1:9/cb"
    assert task["request"] == payload
    assert task["billed_tokens"] == 864 * 496 * (24 * 4 + 1) // 1024
    assert task["deleted"] is False
    assert task["created_at"] <= task["updated_at"]


async def test_admin_stats_count_operations_and_statuses(
    emu: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    task_id = await create(client, body())
    await client.post(CREATE, json={})
    await client.get(f"{CREATE}/{task_id}")
    await client.get(CREATE)
    await client.delete(f"{CREATE}/cgt-20250101000000-abcde")
    stats = await emu.astats()
    assert stats["requests"]["create"] == {"200": 1, "400": 1}
    assert stats["requests"]["get"] == {"200": 1}
    assert stats["requests"]["list"] == {"200": 1}
    assert stats["requests"]["delete"] == {"404": 1}
    await emu.areset()
    assert (await emu.astats())["requests"] == {"admin": {"200": 1}}


async def test_admin_clock_rejects_bad_input(emu: EmulatorHandle) -> None:
    async with httpx.AsyncClient(base_url=str(emu)) as c:
        for payload in ({"advance_seconds": -1}, {"advance_seconds": "x"}, {}, [1]):
            resp = await c.post("/_emulator/clock", json=payload)
            assert resp.status_code == 400, payload
        ok = await c.post("/_emulator/clock", json={"advance_seconds": 60})
        assert ok.status_code == 200
        assert ok.json()["offset"] == 60
        info = (await c.get("/_emulator/info")).json()
    assert M20 in info["models"] and M20_VE in info["models"]
    assert "signing_secret" not in info["config"]


async def test_unknown_api_path_is_provider_shaped_404(client: httpx.AsyncClient) -> None:
    resp = await client.get("/contents/nothing")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "NotFound"
