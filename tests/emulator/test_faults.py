"""Fault injection: the admin API and every fault kind."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from seedance_pipeline.emulator.faults import FAULT_KINDS
from seedance_pipeline.emulator.testing import (
    CallbackReceiver,
    EmulatorHandle,
    callback_receiver,
    running_emulator,
)
from tests.emulator.conftest import (
    CREATE,
    M10_PRO,
    M20,
    SLOW,
    body,
    create,
    fast_config,
    get,
    image,
    tiny,
    wait_status,
)

_paths = itertools.count()


async def admin_put(emu: EmulatorHandle, payload: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=str(emu)) as c:
        if isinstance(payload, bytes):
            return await c.put("/_emulator/faults", content=payload)
        return await c.put("/_emulator/faults", json=payload)


async def hits(emu: EmulatorHandle) -> dict[str, int]:
    return dict((await emu.astats())["faults"])


# -- admin API ----------------------------------------------------------------------


async def test_put_get_faults_roundtrip(emu: EmulatorHandle) -> None:
    rules = [
        {"kind": "create_5xx", "probability": 0.5, "max_hits": 2, "match": {"model": M20}},
        {"kind": "slow_download", "bytes_per_second": 1000},
    ]
    resp = await admin_put(emu, {"rules": rules})
    assert resp.status_code == 200
    got = await emu.aadmin("GET", "/_emulator/faults")
    assert [r["kind"] for r in got["rules"]] == ["create_5xx", "slow_download"]
    assert got["rules"][0]["match"] == {"model": M20}
    assert got["rules"][0]["hits"] == 0
    assert set(got["kinds"]) == set(FAULT_KINDS)
    # PUT replaces the whole set.
    assert (await admin_put(emu, [])).status_code == 200
    assert (await emu.aadmin("GET", "/_emulator/faults"))["rules"] == []


@pytest.mark.parametrize(
    ("payload", "mentions"),
    [
        (b"{not json", "not valid JSON"),
        ({"rules": [{"kind": "explode"}]}, "explode"),
        ([{"kind": "create_5xx", "probability": 2}], "probability"),
        ([{"kind": "create_5xx", "colour": "red"}], "colour"),
        ([{"kind": "create_429", "match": {"prompt": "x"}}], "match.prompt"),
        ([{"kind": "slow_download"}], "bytes_per_second"),
        ([{"kind": "truncated_download", "after_bytes": 5, "fraction": 0.5}], "not both"),
        ([{"probability": 1}], "kind"),
        ({"faults": []}, "rules"),
        ("create_5xx", "list of rules"),
    ],
)
async def test_bad_fault_sets_are_400_with_reason(
    emu: EmulatorHandle, payload: Any, mentions: str
) -> None:
    await emu.aset_faults([{"kind": "stuck"}])
    resp = await admin_put(emu, payload)
    assert resp.status_code == 400
    assert mentions in resp.json()["error"]["message"]
    # A rejected PUT leaves the previous set in place.
    assert [r["kind"] for r in (await emu.aadmin("GET", "/_emulator/faults"))["rules"]] == ["stuck"]


async def test_faults_file_at_start(media_dir: Path, tmp_path: Path) -> None:
    from seedance_pipeline.emulator.config import load_faults_file

    path = tmp_path / "faults.json"
    path.write_text(json.dumps([{"kind": "create_5xx", "max_hits": 1}]))
    config = fast_config(media_dir, faults=load_faults_file(path))
    async with running_emulator(config) as handle, handle.async_client() as c:
        assert (await c.post(CREATE, json=body())).status_code == 500
        assert (await c.post(CREATE, json=body())).status_code == 200


async def test_probability_max_hits_and_match(
    emu: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    await emu.aset_faults(
        [
            {"kind": "create_5xx", "probability": 0.0},
            {
                "kind": "create_429",
                "max_hits": 2,
                "match": {"prompt_contains": "busy", "model": M20},
            },
        ]
    )
    codes = [
        (await client.post(CREATE, json=body(prompt="busy day"))).status_code for _ in range(3)
    ]
    assert codes == [429, 429, 200]
    assert (await client.post(CREATE, json=body(M10_PRO, prompt="busy day"))).status_code == 200
    assert (await client.post(CREATE, json=body(prompt="calm"))).status_code == 200
    assert await hits(emu) == {"create_429": 2}
    rules = (await emu.aadmin("GET", "/_emulator/faults"))["rules"]
    assert [r["hits"] for r in rules] == [0, 2]


async def test_probability_is_roughly_honoured(
    emu: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    await emu.aset_faults([{"kind": "create_5xx", "probability": 0.5}])
    codes = [(await client.post(CREATE, json=body())).status_code for _ in range(40)]
    assert 5 <= codes.count(500) <= 35
    assert codes.count(500) + codes.count(200) == 40


# -- create-time faults -------------------------------------------------------------------


async def test_create_5xx(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    await emu.aset_faults([{"kind": "create_5xx"}])
    resp = await client.post(CREATE, json=body())
    assert resp.status_code == 500
    err = resp.json()["error"]
    assert err["code"] == "InternalServiceError"
    assert err["type"] == "InternalServerError"
    assert await emu.atasks() == []
    assert await hits(emu) == {"create_5xx": 1}


async def test_create_429(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    await emu.aset_faults([{"kind": "create_429", "retry_after": 7, "code": "ServerOverloaded"}])
    resp = await client.post(CREATE, json=body())
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "7"
    assert resp.json()["error"]["code"] == "ServerOverloaded"
    assert await emu.atasks() == []


@pytest.mark.parametrize("mode", ["close", "reset"])
async def test_create_drop(emu: EmulatorHandle, client: httpx.AsyncClient, mode: str) -> None:
    await emu.aset_faults([{"kind": "create_drop", "mode": mode, "max_hits": 1}])
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await client.post(CREATE, json=body())
    assert await emu.atasks() == []
    stats = await emu.astats()
    assert stats["requests"]["create"] == {"dropped": 1}
    assert stats["faults"] == {"create_drop": 1}
    # The server is healthy afterwards.
    assert (await client.post(CREATE, json=body())).status_code == 200


async def test_create_ambiguous_reset_creates_the_task(
    emu: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    await emu.aset_faults([{"kind": "create_ambiguous", "max_hits": 1}])
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await client.post(CREATE, json=body(prompt="ambiguous one"))
    (task,) = await emu.atasks()
    assert task["request"]["content"][0]["text"] == "ambiguous one"
    # The client can find it by listing.
    listed = (await client.get(CREATE)).json()
    assert [t["id"] for t in listed["items"]] == [task["id"]]


async def test_create_ambiguous_delay_times_out_the_client(
    emu: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    await emu.aset_faults([{"kind": "create_ambiguous", "mode": "delay", "delay_seconds": 0.6}])
    with pytest.raises(httpx.ReadTimeout):
        await client.post(CREATE, json=body(), timeout=0.2)
    assert len(await emu.atasks()) == 1
    started = time.monotonic()
    resp = await client.post(CREATE, json=body(), timeout=5)
    assert resp.status_code == 200 and time.monotonic() - started >= 0.5
    assert len(await emu.atasks()) == 2


async def test_input_text_moderation(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    await emu.aset_faults([{"kind": "input_moderation", "match": {"prompt_contains": "forbidden"}}])
    resp = await client.post(CREATE, json=body(prompt="a forbidden thing"))
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["code"] == "InputTextSensitiveContentDetected"
    assert "content[0]" in err["message"]
    assert await emu.atasks() == []
    assert (await client.post(CREATE, json=body(prompt="fine"))).status_code == 200


async def test_input_image_privacy_moderation(
    emu: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    await emu.aset_faults(
        [
            {
                "kind": "input_moderation",
                "code": "InputImageSensitiveContentDetected.PrivacyInformation",
                "match": {"reference_url": "face.png"},
            }
        ]
    )
    payload = body(M20)
    payload["content"].append(image("https://img.example/face.png", role="first_frame"))
    resp = await client.post(CREATE, json=payload)
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["code"] == "InputImageSensitiveContentDetected.PrivacyInformation"
    assert "'content[1]' may contain real person" in err["message"]


# -- task outcome faults --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "status", "code"),
    [
        (
            {"kind": "output_moderation"},
            "failed",
            "OutputVideoSensitiveContentDetected.PolicyViolation",
        ),
        (
            {
                "kind": "output_moderation",
                "code": "OutputAudioSensitiveContentDetected.PolicyViolation",
            },
            "failed",
            "OutputAudioSensitiveContentDetected.PolicyViolation",
        ),
        ({"kind": "internal_failure"}, "failed", "InternalServiceError"),
        ({"kind": "expire"}, "expired", "TaskExpired"),
    ],
)
async def test_task_outcome_faults(
    emu: EmulatorHandle, client: httpx.AsyncClient, rule: dict[str, Any], status: str, code: str
) -> None:
    await emu.aset_faults([rule])
    task = await wait_status(client, await create(client, body()), status)
    assert task["error"]["code"] == code
    assert task["error"]["message"]
    assert task["usage"] == {"completion_tokens": 0, "total_tokens": 0}
    assert "content" not in task
    (admin,) = await emu.atasks()
    assert admin["billed_tokens"] == 0
    assert admin["faults"] == [rule["kind"]]
    assert (await hits(emu)) == {rule["kind"]: 1}


async def test_expire_while_queued(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    await emu.aset_faults([{"kind": "expire", "phase": "queued"}])
    task_id = await create(client, body(SLOW, callback_url=None))
    await emu.aadvance_clock(150)
    task = await get(client, task_id)
    assert task["status"] == "expired"
    assert task["updated_at"] - task["created_at"] in (99, 100, 101)


async def test_stuck_task_stays_running(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    await emu.aset_faults([{"kind": "stuck", "match": {"prompt_contains": "stuck"}}])
    stuck = await create(client, body(prompt="stuck job", execution_expires_after=3600))
    normal = await create(client, body(prompt="normal job"))
    await wait_status(client, normal, "succeeded")
    await emu.aadvance_clock(7200)  # past execution_expires_after, within retention
    assert (await get(client, stuck))["status"] == "running"


# -- auth / account faults ---------------------------------------------------------------------


async def test_auth_401_for_one_key(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    await emu.aset_faults([{"kind": "auth_401", "match": {"api_key": "ek-second"}}])
    async with httpx.AsyncClient(
        base_url=emu.api_base, headers={"Authorization": "Bearer ek-second"}
    ) as other:
        resp = await other.get(CREATE)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "AuthenticationError"
    assert (await client.get(CREATE)).status_code == 200


async def test_overdue_403(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    await emu.aset_faults([{"kind": "overdue_403", "match": {"api_key": emu.api_key}}])
    resp = await client.post(CREATE, json=body())
    assert resp.status_code == 403
    err = resp.json()["error"]
    assert (err["code"], err["type"]) == ("AccountOverdueError", "Forbidden")
    assert (await client.get(CREATE)).status_code == 200  # queries still work


async def test_model_not_open_404(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    await emu.aset_faults([{"kind": "model_not_open_404", "match": {"model": M20}}])
    resp = await client.post(CREATE, json=body(M20))
    assert resp.status_code == 404
    err = resp.json()["error"]
    assert (err["code"], err["type"]) == ("ModelNotOpen", "Not Found")
    assert M20 in err["message"]
    assert (await client.post(CREATE, json=body(M10_PRO))).status_code == 200


async def test_get_5xx(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    task_id = await create(client, body())
    await emu.aset_faults([{"kind": "get_5xx", "max_hits": 1, "status": 503}])
    first = await client.get(f"{CREATE}/{task_id}")
    assert first.status_code == 503
    assert first.json()["error"]["code"] == "InternalServiceError"
    assert (await client.get(f"{CREATE}/{task_id}")).status_code == 200


async def test_list_5xx(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    """The list fails on its own (a GET of the task still answers): the read API's other half."""
    task_id = await create(client, body())
    await emu.aset_faults([{"kind": "list_5xx", "max_hits": 1, "status": 502}])
    first = await client.get(CREATE)
    assert first.status_code == 502
    assert first.json()["error"]["code"] == "InternalServiceError"
    assert (await client.get(f"{CREATE}/{task_id}")).status_code == 200
    assert task_id in [t["id"] for t in (await client.get(CREATE)).json()["items"]]


@pytest.mark.parametrize(
    ("shape", "check"),
    [
        ("not_json", lambda r: not _is_json(r.content)),
        ("not_object", lambda r: isinstance(r.json(), list) and r.json()[0]["id"]),
        ("missing_fields", lambda r: "id" not in r.json() and "status" not in r.json()),
        ("wrong_types", lambda r: r.json()["id"] == 12345 and r.json()["status"] == ["running"]),
        ("unknown_status", lambda r: r.json()["status"] == "paused"),
        ("huge", lambda r: len(r.content) > 2_000_000 and r.json()["status"]),
    ],
)
async def test_get_bad_body(
    emu: EmulatorHandle, client: httpx.AsyncClient, shape: str, check: Any
) -> None:
    task_id = await create(client, body(prompt=f"bad get {shape}"))
    await emu.aset_faults(
        [
            {
                "kind": "get_bad_body",
                "shape": shape,
                "unknown_status": "paused",
                "huge_bytes": 2_100_000,
                "max_hits": 1,
                "match": {"prompt_contains": "bad get"},
            }
        ]
    )
    broken = await client.get(f"{CREATE}/{task_id}")
    assert broken.status_code == 200 and check(broken), broken.content[:200]
    healthy = await client.get(f"{CREATE}/{task_id}")
    assert healthy.json()["id"] == task_id
    assert await hits(emu) == {"get_bad_body": 1}
    # An unknown task stays a 404: the fault mangles answers, it does not invent tasks.
    await emu.aset_faults([{"kind": "get_bad_body", "shape": "huge"}])
    assert (await client.get(f"{CREATE}/cgt-20260101000000-zzzzz")).status_code == 404


@pytest.mark.parametrize("creates_task", [True, False])
async def test_create_bad_body(
    emu: EmulatorHandle, client: httpx.AsyncClient, creates_task: bool
) -> None:
    await emu.aset_faults(
        [
            {
                "kind": "create_bad_body",
                "shape": "missing_fields",
                "status": 201,
                "creates_task": creates_task,
                "max_hits": 1,
            }
        ]
    )
    broken = await client.post(CREATE, json=body(prompt="bad create"))
    assert broken.status_code == 201 and "id" not in broken.json()
    tasks = await emu.atasks()
    assert len(tasks) == (1 if creates_task else 0)
    if creates_task:
        assert tasks[0]["faults"] == ["create_bad_body:missing_fields"]
    # Invalid requests are still refused as the real API would, before any fault.
    assert (await client.post(CREATE, json=body(prompt="x") | {"duration": 99})).status_code == 400
    assert (await client.post(CREATE, json=body())).json()["id"].startswith("cgt-")


async def test_create_bad_body_not_json(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    await emu.aset_faults([{"kind": "create_bad_body", "shape": "not_json"}])
    broken = await client.post(CREATE, json=body())
    assert broken.status_code == 200 and not _is_json(broken.content)
    assert broken.content.startswith(b'{"id": "cgt-')
    assert len(await emu.atasks()) == 1


@pytest.mark.parametrize(
    ("rule", "mentions"),
    [
        ({"kind": "get_bad_body"}, "shape"),
        ({"kind": "get_bad_body", "shape": "garbled"}, "shape"),
        ({"kind": "get_bad_body", "shape": "huge", "huge_bytes": 10}, "huge_bytes"),
        ({"kind": "create_bad_body", "shape": "not_json", "status": 500}, "status"),
        ({"kind": "get_bad_body", "shape": "not_json", "creates_task": False}, "creates_task"),
    ],
)
async def test_bad_body_rules_are_validated(
    emu: EmulatorHandle, rule: dict[str, Any], mentions: str
) -> None:
    resp = await admin_put(emu, [rule])
    assert resp.status_code == 400 and mentions in resp.json()["error"]["message"]


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


# -- download faults ------------------------------------------------------------------------------


async def finished_url(client: httpx.AsyncClient, payload: dict[str, Any]) -> str:
    task = await wait_status(client, await create(client, payload), "succeeded")
    return str(task["content"]["video_url"])


async def test_slow_download(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    url = await finished_url(client, tiny())
    size = int((await client.head(url)).headers["content-length"])
    await emu.aset_faults([{"kind": "slow_download", "bytes_per_second": size * 2}])
    started = time.monotonic()
    resp = await client.get(url)
    elapsed = time.monotonic() - started
    assert resp.status_code == 200 and len(resp.content) == size
    assert elapsed >= 0.35  # the server paces chunks: >= 0.4 s at 2x size per second
    assert (await hits(emu))["slow_download"] >= 1


@pytest.mark.parametrize("rule", [{"after_bytes": 1000}, {"fraction": 0.25}])
async def test_truncated_download(
    emu: EmulatorHandle, client: httpx.AsyncClient, rule: dict[str, Any]
) -> None:
    url = await finished_url(client, tiny())
    size = int((await client.head(url)).headers["content-length"])
    await emu.aset_faults([{"kind": "truncated_download", "max_hits": 1, **rule}])
    received = 0
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream("GET", url) as resp:
            assert int(resp.headers["content-length"]) == size
            async for chunk in resp.aiter_raw():
                received += len(chunk)
    expected = rule.get("after_bytes") or int(size * rule["fraction"])
    assert received == expected
    again = await client.get(url)
    assert len(again.content) == size


async def test_url_expires_early(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    await emu.aset_faults([{"kind": "url_expires_early", "ttl_seconds": 60}])
    url = await finished_url(client, tiny())
    assert (await client.get(url)).status_code == 200
    await emu.aadvance_clock(61)
    resp = await client.get(url)
    assert resp.status_code == 403 and "AccessDenied" in resp.text


# -- callback faults ----------------------------------------------------------------


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackReceiver]:
    with callback_receiver() as r:
        yield r


def path() -> str:
    return f"/f{next(_paths)}"


async def test_callback_drop(
    emu: EmulatorHandle, client: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    p = path()
    await emu.aset_faults([{"kind": "callback_drop", "statuses": ["queued", "running"]}])
    await create(client, body(callback_url=receiver.url + p))
    got = await receiver.await_for(lambda r: len(r) >= 1, path=p)
    await asyncio.sleep(0.2)
    assert [c.body["status"] for c in receiver.snapshot(p)] == ["succeeded"]
    stats = await emu.astats()
    assert stats["callbacks"]["dropped"] == 2
    assert stats["faults"]["callback_drop"] == 2
    assert got[0].body["status"] == "succeeded"


async def test_callback_duplicate(
    emu: EmulatorHandle, client: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    p = path()
    await emu.aset_faults([{"kind": "callback_duplicate", "count": 3, "statuses": ["succeeded"]}])
    await create(client, body(callback_url=receiver.url + p))
    got = await receiver.await_for(lambda r: len(r) >= 5, path=p)
    assert [c.body["status"] for c in got] == ["queued", "running"] + ["succeeded"] * 3
    assert len({json.dumps(c.body, sort_keys=True) for c in got[2:]}) == 1


async def test_callback_reorder(
    emu: EmulatorHandle, client: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    p = path()
    await emu.aset_faults([{"kind": "callback_reorder"}])
    await create(client, body(callback_url=receiver.url + p))
    got = await receiver.await_for(lambda r: len(r) >= 3, path=p)
    assert [c.body["status"] for c in got] == ["succeeded", "queued", "running"]


async def test_callback_delay(
    emu: EmulatorHandle, client: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    p = path()
    await emu.aset_faults([{"kind": "callback_delay", "seconds": 0.5, "statuses": ["queued"]}])
    started = time.time()
    task_id = await create(client, body(callback_url=receiver.url + p))
    got = await receiver.await_for(lambda r: len(r) >= 3, path=p)
    assert [c.body["status"] for c in got] == ["running", "succeeded", "queued"]
    assert got[-1].at - started >= 0.45
    assert all(c.body["id"] == task_id for c in got)


async def test_callback_wrong_job(
    emu: EmulatorHandle, client: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    pa, pb = path(), path()
    a = await create(client, body(prompt="job A", callback_url=receiver.url + pa))
    await receiver.await_for(lambda r: len(r) >= 3, path=pa)
    await emu.aset_faults(
        [
            {
                "kind": "callback_wrong_job",
                "match": {"prompt_contains": "job B"},
                "statuses": ["succeeded"],
            }
        ]
    )
    b = await create(client, body(prompt="job B", callback_url=receiver.url + pb))
    got_a = await receiver.await_for(lambda r: len(r) >= 4, path=pa)
    assert got_a[-1].body["id"] == b  # B's result landed on A's endpoint
    assert got_a[-1].body["id"] != a
    got_b = receiver.snapshot(pb)
    assert [c.body["status"] for c in got_b] == ["queued", "running"]


async def test_every_fault_kind_is_covered_by_a_test() -> None:
    source = Path(__file__).read_text()
    missing = [k for k in FAULT_KINDS if f'"kind": "{k}"' not in source]
    assert missing == []
