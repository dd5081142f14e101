"""Output files: real H.264 MP4s and PNGs, signed expiring URLs, HEAD/Range, padding, cache."""

from __future__ import annotations

import hashlib
import re
import struct
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import av
import httpx

from seedance_pipeline.emulator.testing import EmulatorHandle, running_emulator
from tests.emulator.conftest import (
    M10_FAST,
    M20,
    M20_VE,
    body,
    create,
    fast_config,
    tiny,
    wait_status,
)


async def finished_video(
    client: httpx.AsyncClient, payload: dict[str, object]
) -> tuple[str, dict[str, object]]:
    task = await wait_status(client, await create(client, payload), "succeeded")
    content = task["content"]
    assert isinstance(content, dict)
    return str(content["video_url"]), task


def probe(path: Path) -> tuple[str, int, int, int, float, list[str]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = sum(1 for _ in container.decode(video=0))
        kinds = sorted(str(s.type) for s in container.streams)
        assert container.duration is not None
        duration = float(container.duration) / 1_000_000
        return stream.codec_context.name, stream.width, stream.height, decoded, duration, kinds


async def test_video_is_playable_h264_of_requested_shape(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    url, task = await finished_video(
        client, body(M20, resolution="480p", ratio="16:9", duration=4, return_last_frame=True)
    )
    resp = await client.get(url)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "video/mp4"
    assert int(resp.headers["content-length"]) == len(resp.content)
    out = tmp_path / "v.mp4"
    out.write_bytes(resp.content)
    codec, width, height, frames, duration, kinds = probe(out)
    assert codec == "h264"
    assert (width, height) == (864, 496)
    assert frames == 24 * 4 + 1
    assert abs(duration - 97 / 24) < 0.1
    assert kinds == ["audio", "video"]  # generate_audio defaults to true on 2.0
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
        assert container.streams.video[0].average_rate == 24

    png = await client.get(str(task["content"]["last_frame_url"]))  # type: ignore[index]
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png.content[16:24]) == (864, 496)


async def test_video_without_audio_and_frames_mode(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    url, _ = await finished_video(client, tiny())
    out = tmp_path / "v.mp4"
    out.write_bytes((await client.get(url)).content)
    codec, width, height, frames, _, kinds = probe(out)
    assert (codec, width, height, frames, kinds) == ("h264", 960, 416, 29, ["video"])


async def test_head_and_range_requests(client: httpx.AsyncClient) -> None:
    url, _ = await finished_video(client, tiny())
    full = (await client.get(url)).content
    head = await client.head(url)
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(full)
    assert head.headers["accept-ranges"] == "bytes"

    part = await client.get(url, headers={"Range": "bytes=10-109"})
    assert part.status_code == 206
    assert part.content == full[10:110]
    assert part.headers["content-range"] == f"bytes 10-109/{len(full)}"
    tail = await client.get(url, headers={"Range": "bytes=-16"})
    assert tail.status_code == 206 and tail.content == full[-16:]
    open_end = await client.get(url, headers={"Range": f"bytes={len(full) - 5}-"})
    assert open_end.content == full[-5:]
    beyond = await client.get(url, headers={"Range": f"bytes={len(full)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(full)}"
    multi = await client.get(url, headers={"Range": "bytes=0-1,5-6"})
    assert multi.status_code == 200 and multi.content == full


async def test_urls_have_the_tos_shape(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    """Section 0, C1/C2: `/{model without date}/{021...}.mp4?X-Tos-...`, the last frame beside
    it as `_last-frame.png`."""
    task = await wait_status(
        client, await create(client, body(return_last_frame=True)), "succeeded"
    )
    video, frame = (
        urlsplit(task["content"]["video_url"]),
        urlsplit(task["content"]["last_frame_url"]),
    )
    assert re.fullmatch(r"/dreamina-seedance-2-0/021\d{13}0{20}ffff[0-9a-f]{14}\.mp4", video.path)
    assert frame.path == video.path.replace(".mp4", "_last-frame.png")
    q = parse_qs(video.query)
    assert sorted(q) == [
        "X-Tos-Algorithm",
        "X-Tos-Credential",
        "X-Tos-Date",
        "X-Tos-Expires",
        "X-Tos-Signature",
        "X-Tos-SignedHeaders",
    ]
    assert q["X-Tos-Algorithm"] == ["TOS4-HMAC-SHA256"]
    assert q["X-Tos-Expires"] == ["86400"]
    assert q["X-Tos-SignedHeaders"] == ["host"]
    assert re.fullmatch(r"AKLT\w+/\d{8}/ap-southeast-1/tos/request", q["X-Tos-Credential"][0])
    assert re.fullmatch(r"[0-9a-f]{64}", q["X-Tos-Signature"][0])
    assert task["output_format"] == "mp4"


async def test_tos_urls_name_each_regions_storage_host(media_dir: Path) -> None:
    config = fast_config(media_dir, tos_urls=True)
    async with running_emulator(config) as handle, handle.async_client() as c:
        byteplus = await wait_status(c, await create(c, body(M20)), "succeeded")
        volc = await wait_status(c, await create(c, body(M20_VE)), "succeeded")
    bp, ve = urlsplit(byteplus["content"]["video_url"]), urlsplit(volc["content"]["video_url"])
    assert (bp.scheme, bp.hostname) == (
        "https",
        "ark-content-generation-ap-southeast-1.tos-ap-southeast-1.volces.com",
    )
    assert ve.hostname == "ark-content-generation-cn-beijing.tos-cn-beijing.volces.com"
    assert "%2Fcn-beijing%2Ftos%2Frequest" in ve.query
    assert ve.path.startswith("/doubao-seedance-2-0/021")


def _tos_error(resp: httpx.Response) -> dict[str, str]:
    """TOS answers refusals with a JSON body and its own request id header."""
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers["x-tos-request-id"]
    body: dict[str, str] = resp.json()
    assert set(body) == {"Code", "Message", "RequestId", "HostId"}
    return body


async def test_signed_url_expires_after_ttl(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    url, task = await finished_video(client, tiny())
    q = parse_qs(urlsplit(url).query)
    issued = datetime.strptime(q["X-Tos-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert int(issued.timestamp()) - int(task["updated_at"]) in (-1, 0)  # type: ignore[call-overload]
    assert (await client.get(url)).status_code == 200
    await emu.aadvance_clock(86400 - 120)
    assert (await client.get(url)).status_code == 200
    await emu.aadvance_clock(240)
    resp = await client.get(url)
    assert resp.status_code == 403
    error = _tos_error(resp)
    assert (error["Code"], error["Message"]) == ("AccessDenied", "Request has expired")
    # The task has left the 24 h query window too (retention_hours, section 0 C10).
    gone = await client.get(f"/contents/generations/tasks/{task['id']}")
    assert gone.status_code == 404


async def test_bad_signature_and_unknown_files(
    emu: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    url, task = await finished_video(client, tiny())
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    longer = dict(q, **{"X-Tos-Expires": "604800"})
    forged = dict(q, **{"X-Tos-Signature": "0" * 64})
    for bad in (f"{base}?{urlencode(longer)}", base, f"{base}?{urlencode(forged)}"):
        resp = await client.get(bad)
        assert resp.status_code == 403
        assert _tos_error(resp)["Code"] == "SignatureDoesNotMatch"
    # A correctly signed URL for a file that was not produced is a 404 NoSuchKey.
    signer = emu.emulator.signer
    record = emu.emulator.store.tasks[str(task["id"])]
    path = signer.object_path(record.id, "last_frame.png", record.req.model_id, record.created_at)
    missing = await client.get(signer.url(path, emu.emulator.clock.now(), 3600))
    assert missing.status_code == 404
    assert _tos_error(missing)["Code"] == "NoSuchKey"
    unknown = await client.get(signer.url("/dreamina-seedance-2-0/nothing.mp4", 0, 10**10))
    assert unknown.status_code == 404


async def test_public_url_is_used_for_file_links(media_dir: Path) -> None:
    config = fast_config(media_dir, public_url="https://cdn.example.test/ark/")
    async with running_emulator(config) as handle, handle.async_client() as c:
        task = await wait_status(c, await create(c, body()), "succeeded")
    assert task["content"]["video_url"].startswith(
        "https://cdn.example.test/ark/dreamina-seedance-2-0/021"
    )


async def test_min_video_bytes_pads_with_free_box_and_stays_playable(
    media_dir: Path, tmp_path: Path
) -> None:
    config = fast_config(media_dir, min_video_bytes=3_000_000)
    async with running_emulator(config) as handle, handle.async_client() as c:
        url, _ = await finished_video(c, tiny())
        async with c.stream("GET", url) as resp:
            assert resp.status_code == 200
            out = tmp_path / "big.mp4"
            with out.open("wb") as fh:
                async for chunk in resp.aiter_bytes():
                    fh.write(chunk)
    data = out.read_bytes()
    assert len(data) == 3_000_000
    # Walk the top-level boxes: the last one is the padding `free` box.
    pos, boxes = 0, []
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        boxes.append(kind)
        pos += size
    assert pos == len(data)
    assert boxes[-1] == b"free" and b"moov" in boxes
    codec, width, height, frames, _, _ = probe(out)
    assert (codec, width, height, frames) == ("h264", 960, 416, 29)


async def test_one_encode_per_shape_with_prewarm(tmp_path: Path) -> None:
    config = fast_config(tmp_path / "fresh", prewarm_media=True)
    async with running_emulator(config) as handle, handle.async_client() as c:
        payload = body(M10_FAST, resolution="480p", ratio="1:1", frames=29)
        ids = [await create(c, payload) for _ in range(6)]
        urls = [(await wait_status(c, i, "succeeded"))["content"]["video_url"] for i in ids]
        sizes = {len((await c.get(u)).content) for u in urls}
        stats = await handle.astats()
    assert len(sizes) == 1
    assert stats["media_encodes"] == 1
    assert len(list((tmp_path / "fresh" / "media").glob("*.mp4"))) == 1


async def test_emulators_sharing_a_media_dir_encode_a_shape_once(tmp_path: Path) -> None:
    """EMULATOR_MEDIA_DIR / `media_dir`: the second emulator, with a data dir of its own,
    serves the first one's file and encodes nothing."""
    shared = tmp_path / "shared-media"
    payload = body(M10_FAST, resolution="480p", ratio="1:1", frames=29)
    served, encodes = [], []
    for name in ("first", "second"):
        config = fast_config(tmp_path / name, media_dir=shared, prewarm_media=False)
        async with running_emulator(config) as handle, handle.async_client() as c:
            task = await create(c, payload)
            url = (await wait_status(c, task, "succeeded"))["content"]["video_url"]
            served.append(hashlib.sha256((await c.get(url)).content).hexdigest())
            encodes.append((await handle.astats())["media_encodes"])
    assert encodes == [1, 0] and served[0] == served[1]
    assert len(list(shared.glob("*.mp4"))) == 1
    assert not (tmp_path / "first" / "media").exists()


async def test_admin_file_digest_matches_the_served_bytes_even_after_expiry(
    emu: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    url, task = await finished_video(client, tiny(return_last_frame=True))
    served = (await client.get(url)).content
    files_before = emu.emulator.store.tasks[str(task["id"])].requests["file"]
    await emu.aadvance_clock(86400 + 60)  # the signed URL has expired
    assert (await client.get(url)).status_code == 403
    admin = httpx.AsyncClient(base_url=str(emu))
    async with admin:
        digest = (await admin.get(f"/_emulator/tasks/{task['id']}/files/video.mp4")).json()
        frame = await admin.get(f"/_emulator/tasks/{task['id']}/files/last_frame.png")
        missing = await admin.get("/_emulator/tasks/cgt-nope/files/video.mp4")
        unknown_name = await admin.get(f"/_emulator/tasks/{task['id']}/files/other.bin")
    assert digest == {
        "task_id": task["id"],
        "name": "video.mp4",
        "size": len(served),
        "sha256": hashlib.sha256(served).hexdigest(),
    }
    assert frame.status_code == 200 and frame.json()["size"] > 0
    assert missing.status_code == 404 and missing.json()["Code"] == "NoSuchKey"
    assert unknown_name.status_code == 404
    # Admin reads are not downloads (and the refused GET never reached the file).
    assert emu.emulator.store.tasks[str(task["id"])].requests["file"] == files_before
