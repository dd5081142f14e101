"""Per-model request validation: a table of bad bodies -> provider code and ``param``,
plus the accepted variants (modes, text commands, adaptive ratio, frames)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from seedance_pipeline.emulator.catalog import default_catalog
from tests.emulator.conftest import (
    CREATE,
    M10_FAST,
    M10_LITE_I2V,
    M10_LITE_T2V,
    M10_PRO,
    M15,
    M20,
    M20_FAST,
    M20_MINI,
    M25,
    audio,
    body,
    create,
    get,
    image,
    png_data_url,
    video,
    wait_status,
)

TEXT = {"type": "text", "text": "a lighthouse at dusk"}


def with_content(model: str, *items: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": model, "content": [TEXT, *items], **fields}


BAD_BODIES: list[tuple[str, Any, int, str, str | None]] = [
    # (case, body, http status, code, param)
    ("empty object", {}, 400, "MissingParameter", "model"),
    ("body is a list", [1, 2], 400, "InvalidParameter", "body"),
    ("model not a string", {"model": 5, "content": [TEXT]}, 400, "InvalidParameter", "model"),
    ("no content", {"model": M20}, 400, "MissingParameter", "content"),
    ("content not array", {"model": M20, "content": "hi"}, 400, "InvalidParameter", "content"),
    ("content empty", {"model": M20, "content": []}, 400, "InvalidParameter", "content"),
    (
        "unknown model",
        body("seedance-0-0-x-000000"),
        404,
        "InvalidEndpointOrModel.NotFound",
        "model",
    ),
    (
        "unknown item type",
        {"model": M20, "content": [{"type": "pdf_url"}]},
        400,
        "InvalidParameter",
        "content[0].type",
    ),
    (
        "text item without text",
        {"model": M20, "content": [{"type": "text"}]},
        400,
        "MissingParameter",
        "content[0].text",
    ),
    (
        "image without url",
        {"model": M20, "content": [TEXT, {"type": "image_url", "image_url": {}}]},
        400,
        "MissingParameter",
        "content[1].image_url.url",
    ),
    (
        "bad image role",
        with_content(M20, image(role="hero")),
        400,
        "InvalidParameter",
        "content[1].role",
    ),
    (
        "image data url wrong mime",
        with_content(M20, image("data:text/plain;base64,aGk=")),
        400,
        "InvalidParameter",
        "content[1].image_url.url",
    ),
    (
        "image too small",
        with_content(M20, image(png_data_url(100, 100))),
        400,
        "InvalidParameter",
        "content[1].image_url.url",
    ),
    (
        "image ratio too extreme",
        with_content(M20, image(png_data_url(1800, 400))),
        400,
        "InvalidParameter",
        "content[1].image_url.url",
    ),
    (
        "base64 reference video",
        with_content(M20, video("data:video/mp4;base64,AAAA")),
        400,
        "InvalidParameter",
        "content[1].video_url.url",
    ),
    ("duration too short 2.0", body(M20, duration=3), 400, "InvalidParameter", "duration"),
    ("duration too long 2.0", body(M20, duration=16), 400, "InvalidParameter", "duration"),
    ("duration -1 on 1.0", body(M10_PRO, duration=-1), 400, "InvalidParameter", "duration"),
    ("duration -1 on 1.5", body(M15, duration=-1), 400, "InvalidParameter", "duration"),
    ("duration 3 on 1.5", body(M15, duration=3), 400, "InvalidParameter", "duration"),
    ("duration as string", body(M20, duration="5"), 400, "InvalidParameter", "duration"),
    ("duration as bool", body(M20, duration=True), 400, "InvalidParameter", "duration"),
    ("frames not 25+4n", body(M10_PRO, frames=30), 400, "InvalidParameter", "frames"),
    ("frames too many", body(M10_PRO, frames=293), 400, "InvalidParameter", "frames"),
    ("frames too few", body(M10_PRO, frames=25), 400, "InvalidParameter", "frames"),
    ("frames on 2.0", body(M20, frames=121), 400, "InvalidParameter", "frames"),
    (
        "1080p on 2.0 fast",
        body(M20_FAST, resolution="1080p"),
        400,
        "InvalidParameter",
        "resolution",
    ),
    ("4k on 2.0 mini", body(M20_MINI, resolution="4k"), 400, "InvalidParameter", "resolution"),
    ("4k on 1.0 pro", body(M10_PRO, resolution="4k"), 400, "InvalidParameter", "resolution"),
    ("unknown resolution", body(M20, resolution="2k"), 400, "InvalidParameter", "resolution"),
    ("unknown ratio", body(M20, ratio="2:1"), 400, "InvalidParameter", "ratio"),
    ("seed below -1", body(M20, seed=-2), 400, "InvalidParameter", "seed"),
    ("seed above 2^32-1", body(M20, seed=2**32), 400, "InvalidParameter", "seed"),
    (
        "expires too short",
        body(M20, execution_expires_after=3599),
        400,
        "InvalidParameter",
        "execution_expires_after",
    ),
    (
        "expires too long",
        body(M20, execution_expires_after=259201),
        400,
        "InvalidParameter",
        "execution_expires_after",
    ),
    ("unknown tier", body(M20, service_tier="batch"), 400, "InvalidParameter", "service_tier"),
    ("flex on 2.0", body(M20, service_tier="flex"), 400, "InvalidParameter", "service_tier"),
    (
        "audio on 1.0 pro",
        body(M10_PRO, generate_audio=True),
        400,
        "InvalidParameter",
        "generate_audio",
    ),
    ("draft on 2.0", body(M20, draft=True), 400, "InvalidParameter", "draft"),
    (
        "draft at 720p",
        body(M15, draft=True, resolution="720p"),
        400,
        "InvalidParameter",
        "resolution",
    ),
    ("camera_fixed on 2.0", body(M20, camera_fixed=True), 400, "InvalidParameter", "camera_fixed"),
    (
        "return_last_frame not bool",
        body(M20, return_last_frame="yes"),
        400,
        "InvalidParameter",
        "return_last_frame",
    ),
    (
        "callback not http",
        body(M20, callback_url="ftp://x/y"),
        400,
        "InvalidParameter",
        "callback_url",
    ),
    (
        "10 reference images",
        with_content(M20, *[image(role="reference_image") for _ in range(10)]),
        400,
        "InvalidParameter",
        "content",
    ),
    (
        "4 reference videos",
        with_content(M20, image(role="reference_image"), *[video() for _ in range(4)]),
        400,
        "InvalidParameter",
        "content",
    ),
    (
        "4 reference audios",
        with_content(M20, image(role="reference_image"), *[audio() for _ in range(4)]),
        400,
        "InvalidParameter",
        "content",
    ),
    (
        "13 reference files",
        with_content(
            M20,
            *[image(role="reference_image") for _ in range(9)],
            *[video() for _ in range(3)],
            audio(),
        ),
        400,
        "InvalidParameter",
        "content",
    ),
    ("audio-only references", with_content(M20, audio()), 400, "InvalidParameter", "content"),
    (
        "reference mixed with first_frame",
        with_content(M20, image(role="first_frame"), image(role="reference_image")),
        400,
        "InvalidParameter",
        "content",
    ),
    (
        "two images without roles",
        with_content(M10_PRO, image(), image()),
        400,
        "InvalidParameter",
        "content[1].role",
    ),
    (
        "last_frame alone",
        with_content(M10_PRO, image(role="last_frame")),
        400,
        "InvalidParameter",
        "content[1].role",
    ),
    (
        "three frame images",
        with_content(
            M10_PRO, image(role="first_frame"), image(role="last_frame"), image(role="first_frame")
        ),
        400,
        "InvalidParameter",
        "content",
    ),
    (
        "first+last on pro fast",
        with_content(M10_FAST, image(role="first_frame"), image(role="last_frame")),
        400,
        "InvalidParameter",
        "content",
    ),
    (
        "video reference on 1.0 pro",
        with_content(M10_PRO, image(role="reference_image"), video()),
        400,
        "InvalidParameter",
        "content",
    ),
    (
        "5 references on lite i2v",
        with_content(M10_LITE_I2V, *[image(role="reference_image") for _ in range(5)]),
        400,
        "InvalidParameter",
        "content",
    ),
    (
        "video reference on lite i2v",
        with_content(M10_LITE_I2V, image(role="reference_image"), video()),
        400,
        "InvalidParameter",
        "content",
    ),
    ("lite i2v without image", body(M10_LITE_I2V), 400, "InvalidParameter", "content"),
    (
        "image on lite t2v",
        with_content(M10_LITE_T2V, image()),
        400,
        "InvalidParameter",
        "content",
    ),
    (
        "ratio with first frame on 2.5",
        with_content(M25, image(role="first_frame"), ratio="16:9"),
        400,
        "InvalidParameter.TaskTypeConstraint",
        "ratio",
    ),
    (
        "draft_task on 2.0",
        {"model": M20, "content": [{"type": "draft_task", "draft_task": {"id": "cgt-x"}}]},
        400,
        "InvalidParameter",
        "content",
    ),
    (
        "draft_task unknown id",
        {"model": M15, "content": [{"type": "draft_task", "draft_task": {"id": "cgt-nope"}}]},
        400,
        "InvalidParameter",
        "content[0].draft_task.id",
    ),
    (
        "text flag duration out of range",
        body(M10_PRO, prompt="a cat --dur 20"),
        400,
        "InvalidParameter",
        "duration",
    ),
    (
        "text flag bad resolution",
        body(M10_LITE_T2V, prompt="a cat --rs 4k"),
        400,
        "InvalidParameter",
        "resolution",
    ),
    (
        "text flag non-integer seed",
        body(M10_PRO, prompt="a cat --seed abc"),
        400,
        "InvalidParameter",
        "seed",
    ),
    (
        "text flag fps 16",
        body(M10_PRO, prompt="a cat --fps 16"),
        400,
        "InvalidParameter",
        "framespersecond",
    ),
    (
        "text flag camerafixed not bool",
        body(M15, prompt="a cat --cf maybe"),
        400,
        "InvalidParameter",
        "camera_fixed",
    ),
]


@pytest.mark.parametrize(
    ("payload", "status", "code", "param"),
    [pytest.param(b, s, c, p, id=name) for name, b, s, c, p in BAD_BODIES],
)
async def test_bad_body_is_rejected_like_the_provider(
    client: httpx.AsyncClient, payload: Any, status: int, code: str, param: str | None
) -> None:
    resp = await client.post(CREATE, json=payload)
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code
    assert err.get("param") == param
    assert err["type"] == ("BadRequest" if status == 400 else "NotFound")
    assert err["message"].startswith("The request failed because ")
    assert " Request id: " in err["message"]
    assert (await client.get(CREATE)).json()["total"] == 0  # no task was made


async def test_invalid_json_is_400(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        CREATE, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "body"


def minimal_valid(model: str) -> dict[str, Any]:
    spec = default_catalog().get(model)
    assert spec is not None
    if "t2v" in spec.modes:
        return body(model)
    return with_content(model, image(role="first_frame"))


@pytest.mark.parametrize("model", default_catalog().model_ids())
async def test_every_catalogue_model_accepts_a_minimal_request(
    client: httpx.AsyncClient, model: str
) -> None:
    task = await get(client, await create(client, minimal_valid(model)))
    assert task["model"] == model
    spec = default_catalog().get(model)
    assert spec is not None
    assert task["resolution"] == spec.default_resolution
    assert task["duration"] == spec.duration.default


@pytest.mark.parametrize(
    "payload",
    [
        with_content(M20, image(role="first_frame")),
        with_content(M20, image()),
        with_content(M20, image(role="first_frame"), image(role="last_frame")),
        with_content(
            M20,
            *[image(role="reference_image") for _ in range(9)],
            video(),
            video(),
            audio(),
        ),
        with_content(M20, video(), audio()),
        with_content(M20, image("asset://asset-123", role="reference_image")),
        with_content(M10_LITE_I2V, *[image(role="reference_image") for _ in range(4)]),
        with_content(M10_PRO, image(role="first_frame"), image(role="last_frame")),
        with_content(M25, image(role="first_frame")),
        {"model": M20, "content": [image(role="reference_image")]},  # text optional with media
        body(M20, duration=-1),
        body(M20, resolution="4k", ratio="21:9"),
        body(M10_PRO, frames=29),
        body(M10_PRO, frames=289),
        body(M15, service_tier="flex", camera_fixed=True),
        body(M20, seed=2**32 - 1, execution_expires_after=3600, watermark=True),
        body(M20, tools=[{"type": "web_search"}], some_extra_field={"x": 1}),
    ],
)
async def test_valid_variants_are_accepted(client: httpx.AsyncClient, payload: Any) -> None:
    resp = await client.post(CREATE, json=payload)
    assert resp.status_code == 200, resp.text


async def test_duration_minus_one_is_reported_as_the_chosen_length(
    client: httpx.AsyncClient,
) -> None:
    """Section 0, C5: whole seconds within the model's range, never -1, from the start; the
    same prompt gets the same length, different prompts spread over the range."""
    lengths = set()
    for i in range(12):
        payload = body(M20, prompt=f"let the model choose {i}", duration=-1)
        queued = await get(client, await create(client, payload))
        done = await wait_status(client, queued["id"], "succeeded")
        assert queued["duration"] == done["duration"]
        assert 4 <= done["duration"] <= 15
        assert done["usage"]["total_tokens"] == 1280 * 720 * (24 * done["duration"] + 1) // 1024
        lengths.add(done["duration"])
    assert len(lengths) > 2
    again = await get(
        client, await create(client, body(M20, prompt="let the model choose 0", duration=-1))
    )
    first = await get(
        client, await create(client, body(M20, prompt="let the model choose 0", duration=-1))
    )
    assert again["duration"] == first["duration"]


async def test_frames_replace_duration_in_the_task(client: httpx.AsyncClient) -> None:
    task_id = await create(client, body(M10_PRO, frames=121, duration=7, resolution="720p"))
    task = await wait_status(client, task_id, "succeeded")
    assert task["frames"] == 121
    assert "duration" not in task
    assert task["usage"]["total_tokens"] == 1248 * 704 * 121 // 1024


async def test_text_flags_parsed_for_1x(client: httpx.AsyncClient) -> None:
    task = await get(
        client,
        await create(client, body(M10_PRO, prompt="a cat --rs 480p --rt 1:1 --dur 3 --seed 77")),
    )
    assert (task["resolution"], task["ratio"], task["duration"], task["seed"]) == (
        "480p",
        "1:1",
        3,
        77,
    )
    # JSON fields win over text commands.
    task = await get(
        client, await create(client, body(M10_PRO, prompt="a cat --rs 480p", resolution="720p"))
    )
    assert task["resolution"] == "720p"
    # Long forms and frames.
    task = await get(
        client,
        await create(client, body(M15, prompt="x --resolution 480p --ratio 9:16 --frames 49")),
    )
    assert (task["resolution"], task["ratio"], task["frames"]) == ("480p", "9:16", 49)


async def test_text_flags_ignored_on_2x(client: httpx.AsyncClient) -> None:
    task = await get(client, await create(client, body(M20, prompt="a cat --rs 4k --dur 99")))
    assert task["resolution"] == "720p"
    assert task["duration"] == 5


async def test_adaptive_ratio_follows_inline_image(client: httpx.AsyncClient) -> None:
    portrait = png_data_url(400, 720)  # 0.56 -> 9:16
    task = await get(
        client,
        await create(
            client, with_content(M20, image(portrait, role="first_frame"), resolution="720p")
        ),
    )
    assert task["ratio"] == "9:16"
    # Remote images cannot be inspected: adaptive falls back to 16:9.
    task = await get(client, await create(client, with_content(M20, image(role="first_frame"))))
    assert task["ratio"] == "16:9"


async def test_draft_then_final_from_draft_task(client: httpx.AsyncClient) -> None:
    draft_id = await create(client, body(M15, draft=True, ratio="4:3", duration=6, seed=9))
    draft = await wait_status(client, draft_id, "succeeded")
    assert draft["draft"] is True and draft["resolution"] == "480p"
    final_id = await create(
        client,
        {
            "model": M15,
            "content": [{"type": "draft_task", "draft_task": {"id": draft_id}}],
            "resolution": "720p",
        },
    )
    final = await get(client, final_id)
    assert final["draft_task_id"] == draft_id
    assert final["draft"] is False
    assert (final["ratio"], final["duration"], final["seed"]) == ("4:3", 6, 9)
    assert final["resolution"] == "720p"
    # A non-draft task cannot be used as a draft.
    resp = await client.post(
        CREATE,
        json={"model": M15, "content": [{"type": "draft_task", "draft_task": {"id": final_id}}]},
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "content[0].draft_task.id"
