"""The official Python SDKs, unchanged, as clients of the emulator (reference section 0, C15):
`volcengine-ark-runtime` (`volcenginesdkarkruntime`, the Ark runtime of
volcengine-python-sdk) and `byteplus-python-sdk-v2[ark]` (`byteplussdkarkruntime`).

Each runs create (text, first frame, first+last frame, reference images), get, list with
filters and pages, delete (queued and finished) and meets its typed errors for 400, 401, 404
and 429. Only the client's construction is ours (base URL, key, and `max_retries=0` where a
test wants the first answer rather than the SDK's retries).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from seedance_pipeline.emulator.config import ModelTiming
from seedance_pipeline.emulator.testing import EmulatorHandle, running_emulator
from tests.emulator.conftest import M10_LITE_T2V, fast_config

BYTEPLUS_20 = "dreamina-seedance-2-0-260128"
VOLCENGINE_20 = "doubao-seedance-2-0-260128"
SLOW = M10_LITE_T2V  # stays queued for an hour in this emulator: DELETE can cancel it
IMAGE = "https://example.com/frame.png"


@dataclass(frozen=True)
class Sdk:
    name: str
    package: str
    model: str
    slow_model: str

    def module(self, sub: str = "") -> ModuleType:
        return importlib.import_module(self.package + sub)

    def client(self, emu: EmulatorHandle, *, api_key: str | None = None, **kwargs: Any) -> Any:
        ark = self.module().Ark
        return ark(base_url=emu.api_base, api_key=api_key or emu.api_key, **kwargs)

    def error(self, name: str) -> type[Exception]:
        cls: type[Exception] = getattr(self.module("._exceptions"), name)
        return cls


SDKS = [
    Sdk("byteplus", "byteplussdkarkruntime", BYTEPLUS_20, SLOW),
    Sdk("volcengine", "volcenginesdkarkruntime", VOLCENGINE_20, "doubao-" + SLOW),
]


@pytest.fixture(scope="module")
def sdk_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    config = fast_config(
        tmp_path_factory.mktemp("sdk-emulator"),
        model_timings={SLOW: ModelTiming(queue_seconds=3600)},
    )
    with running_emulator(config) as handle:
        yield handle


@pytest.fixture(params=SDKS, ids=lambda s: s.name)
def sdk(request: pytest.FixtureRequest, sdk_emulator: EmulatorHandle) -> Sdk:
    sdk_emulator.reset()
    result: Sdk = request.param
    return result


def _text(prompt: str) -> dict[str, Any]:
    return {"type": "text", "text": prompt}


def _image(role: str, url: str = IMAGE) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}, "role": role}


def _wait(client: Any, task_id: str, status: str, within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        task = client.content_generation.tasks.get(task_id=task_id)
        if task.status == status or time.monotonic() > deadline:
            return task
        time.sleep(0.05)


CREATES: dict[str, dict[str, Any]] = {
    "text": dict(content=[_text("a red fox in snow")], resolution="480p", duration=4),
    "first_frame": dict(content=[_text("it runs"), _image("first_frame")], ratio="adaptive"),
    "first_last_frame": dict(
        content=[_text("it turns"), _image("first_frame"), _image("last_frame", IMAGE + "?2")],
        ratio="adaptive",
    ),
    "reference_images": dict(
        content=[
            _text("@Image1 meets @Image2"),
            _image("reference_image"),
            _image("reference_image", IMAGE + "?2"),
        ],
        ratio="16:9",
    ),
}


@pytest.mark.parametrize("mode", list(CREATES))
def test_create_and_get_until_succeeded(sdk: Sdk, sdk_emulator: EmulatorHandle, mode: str) -> None:
    client = sdk.client(sdk_emulator)
    created = client.content_generation.tasks.create(
        model=sdk.model, return_last_frame=True, seed=7, **CREATES[mode]
    )
    assert created.id.startswith("cgt-")
    task = _wait(client, created.id, "succeeded")
    assert task.status == "succeeded", task
    assert task.model == sdk.model
    assert task.content.video_url.split("?")[0].endswith(".mp4")
    assert task.content.last_frame_url.split("?")[0].endswith("_last-frame.png")
    assert task.usage.completion_tokens > 0
    assert task.seed == 7
    assert task.framespersecond == 24
    recorded = next(t for t in sdk_emulator.tasks() if t["id"] == created.id)
    assert recorded["request"]["content"] == CREATES[mode]["content"]


def test_list_with_filters_and_pages(sdk: Sdk, sdk_emulator: EmulatorHandle) -> None:
    client = sdk.client(sdk_emulator)
    tasks = client.content_generation.tasks
    done = [tasks.create(model=sdk.model, content=[_text(f"done {i}")]).id for i in range(3)]
    waiting = tasks.create(model=sdk.slow_model, content=[_text("waiting")]).id
    for task_id in done:
        assert _wait(client, task_id, "succeeded").status == "succeeded"

    everything = tasks.list(page_num=1, page_size=10)
    assert everything.total == 4
    assert [t.id for t in everything.items] == [waiting, *reversed(done)]  # newest first
    page2 = tasks.list(page_num=2, page_size=2)
    assert (page2.total, [t.id for t in page2.items]) == (4, list(reversed(done))[1:])
    assert [t.id for t in tasks.list(status="queued").items] == [waiting]
    assert {t.id for t in tasks.list(model=sdk.model).items} == set(done)
    picked = tasks.list(task_ids=[done[0], waiting])
    assert {t.id for t in picked.items} == {done[0], waiting}
    assert tasks.list(service_tier="flex").total == 0


def test_delete_queued_cancels_and_finished_removes(sdk: Sdk, sdk_emulator: EmulatorHandle) -> None:
    client = sdk.client(sdk_emulator, max_retries=0)
    tasks = client.content_generation.tasks
    queued = tasks.create(model=sdk.slow_model, content=[_text("cancel me")]).id
    tasks.delete(queued)
    assert tasks.get(task_id=queued).status == "cancelled"

    finished = tasks.create(model=sdk.model, content=[_text("delete me")]).id
    assert _wait(client, finished, "succeeded").status == "succeeded"
    tasks.delete(finished)
    with pytest.raises(sdk.error("ArkNotFoundError")):
        tasks.get(task_id=finished)
    # A cancelled task cannot be deleted again (section 7).
    with pytest.raises(sdk.error("ArkBadRequestError")) as again:
        tasks.delete(queued)
    assert again.value.code == "InvalidParameter"  # type: ignore[attr-defined]


def test_typed_errors(sdk: Sdk, sdk_emulator: EmulatorHandle) -> None:
    client = sdk.client(sdk_emulator, max_retries=0)
    tasks = client.content_generation.tasks
    with pytest.raises(sdk.error("ArkBadRequestError")) as bad:
        tasks.create(model=sdk.model, content=[_text("x")], duration=99)
    assert (bad.value.code, bad.value.param) == ("InvalidParameter", "duration")  # type: ignore[attr-defined]

    stranger = sdk.client(sdk_emulator, api_key="ek-not-a-key", max_retries=0)
    with pytest.raises(sdk.error("ArkAuthenticationError")) as auth:
        stranger.content_generation.tasks.list()
    assert auth.value.code == "AuthenticationError"  # type: ignore[attr-defined]

    with pytest.raises(sdk.error("ArkNotFoundError")):
        tasks.get(task_id="cgt-20260101000000-nope0")
    with pytest.raises(sdk.error("ArkNotFoundError")) as unknown_model:
        tasks.create(model="seedance-9-9-nope-991231", content=[_text("x")])
    assert unknown_model.value.code == "InvalidEndpointOrModel.NotFound"  # type: ignore[attr-defined]

    sdk_emulator.set_faults([{"kind": "create_429", "code": "ModelAccountRpmRateLimitExceeded"}])
    with pytest.raises(sdk.error("ArkRateLimitError")) as limited:
        tasks.create(model=sdk.model, content=[_text("x")])
    assert limited.value.code == "ModelAccountRpmRateLimitExceeded"  # type: ignore[attr-defined]


def test_the_published_rpm_limit_reaches_the_sdk_as_a_rate_limit_error(
    sdk: Sdk, tmp_path: Path
) -> None:
    """Not a fault: the emulator's own limit, here the individual account's 180 a minute."""
    with running_emulator(fast_config(tmp_path, account="individual", queue_seconds=3600)) as emu:
        client = sdk.client(emu, max_retries=0)
        for i in range(180):
            try:
                client.content_generation.tasks.create(model=sdk.model, content=[_text(f"{i}")])
            except sdk.error("ArkRateLimitError") as exc:
                assert exc.code == "RateLimitExceeded.QueuedTaskLimitExceeded"  # type: ignore[attr-defined]
        with pytest.raises(sdk.error("ArkRateLimitError")) as limited:
            client.content_generation.tasks.create(model=sdk.model, content=[_text("181")])
    assert limited.value.code == "ModelAccountRpmRateLimitExceeded"  # type: ignore[attr-defined]
