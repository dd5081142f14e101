"""Output files: real H.264 MP4s and PNGs, signed expiring URLs, HEAD/Range, padding, cache."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import av
import httpx

from seedance_pipeline.emulator.testing import EmulatorHandle, running_emulator
from tests.emulator.conftest import M10_FAST, M20, body, create, fast_config, tiny, wait_status


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


async def test_signed_url_expires_after_ttl(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    url, task = await finished_video(client, tiny())
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    assert expires - int(task["updated_at"]) in (86400, 86401)  # type: ignore[call-overload]
    assert (await client.get(url)).status_code == 200
    await emu.aadvance_clock(86400 - 120)
    assert (await client.get(url)).status_code == 200
    await emu.aadvance_clock(240)
    resp = await client.get(url)
    assert resp.status_code == 403
    assert resp.headers["content-type"].startswith("application/xml")
    assert "<Code>AccessDenied</Code>" in resp.text
    assert "expired" in resp.text
    # The task itself is still queryable (7-day window) with the same URL.
    again = await client.get(f"/contents/generations/tasks/{task['id']}")
    assert again.json()["content"]["video_url"] == url


async def test_bad_signature_and_unknown_files(
    emu: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    url, task = await finished_video(client, tiny())
    parts = urlsplit(url)
    q = parse_qs(parts.query)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    tampered = f"{base}?expires={int(q['expires'][0]) + 1}&signature={q['signature'][0]}"
    for bad in (tampered, base, f"{base}?expires=1&signature=abc"):
        resp = await client.get(bad)
        assert resp.status_code == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in resp.text
    # A correctly signed URL for a file that was not produced is a 404 NoSuchKey.
    signed = emu.emulator.signer.url(str(task["id"]), "last_frame.png", int(q["expires"][0]))
    missing = await client.get(signed)
    assert missing.status_code == 404
    assert "<Code>NoSuchKey</Code>" in missing.text
    assert "x-request-id" in missing.headers


async def test_public_url_is_used_for_file_links(media_dir: Path) -> None:
    config = fast_config(media_dir, public_url="https://cdn.example.test/ark/")
    async with running_emulator(config) as handle, handle.async_client() as c:
        task = await wait_status(c, await create(c, body()), "succeeded")
    assert task["content"]["video_url"].startswith(
        "https://cdn.example.test/ark/_files/" + task["id"] + "/video.mp4?expires="
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
    assert missing.status_code == 404 and "<Code>NoSuchKey</Code>" in missing.text
    assert unknown_name.status_code == 404
    # Admin reads are not downloads (and the refused GET never reached the file).
    assert emu.emulator.store.tasks[str(task["id"])].requests["file"] == files_before
