"""Output media: real, playable H.264 MP4s and last-frame PNGs, cached per shape.

Downstream code probes, transcodes and uploads the provider's videos, so the
emulator serves genuine files rather than placeholder bytes. Encoding is the
expensive part, so each distinct shape (size, frame count, audio, padding) is
encoded once, on a worker thread, and kept under the data directory; a
thousand tasks of one shape cost one encode. Files are written to a temporary
name and renamed, so concurrent emulators sharing a data dir never see a
half-written file.

``min_video_bytes`` appends a top-level ``free`` box (ignored by every MP4
reader) to reach a target size; the padding is sparse on disk, so a 500 MB
benchmark file costs almost nothing to make.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import tempfile
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FPS = 24
AUDIO_RATE = 48000

_Maker = Callable[[Path], None]


@dataclass(frozen=True)
class VideoShape:
    """Everything that makes two output videos byte-different."""

    width: int
    height: int
    frames: int
    audio: bool = False
    min_bytes: int = 0

    def stem(self) -> str:
        audio = "_a" if self.audio else ""
        return f"{self.width}x{self.height}_{self.frames}f{audio}"


def _render(width: int, height: int, index: int, total: int) -> np.ndarray:
    """One RGB frame: a colour gradient with a bar that sweeps across over the clip."""
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[..., 0] = x[None, :].astype(np.uint8)
    frame[..., 1] = y[:, None].astype(np.uint8)
    frame[..., 2] = np.uint8((index * 255) // max(total - 1, 1))
    bar = max(width // 20, 2)
    left = int((width - bar) * index / max(total - 1, 1))
    frame[:, left : left + bar, :] = 255
    return frame


def _tmp_path(target: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    return Path(name)


class EncodeCancelled(Exception):
    """The emulator is shutting down; a half-done encode was abandoned."""


def encode_mp4(
    path: Path,
    width: int,
    height: int,
    frames: int,
    audio: bool,
    cancelled: threading.Event | None = None,
) -> None:
    """Write an H.264 (libx264 ultrafast, yuv420p) MP4 at 24 fps, optionally with silent AAC.

    ``cancelled`` is checked between frames so shutdown never waits for a long
    4k encode to finish.
    """
    tmp = _tmp_path(path)
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            video = container.add_stream("libx264", rate=FPS)
            video.width = width
            video.height = height
            video.pix_fmt = "yuv420p"
            video.options = {"preset": "ultrafast", "crf": "28"}
            astream = None
            samples_per_frame = AUDIO_RATE // FPS
            if audio:
                astream = container.add_stream("aac", rate=AUDIO_RATE)
                astream.layout = "stereo"
            sent_samples = 0
            for i in range(frames):
                if cancelled is not None and cancelled.is_set():
                    raise EncodeCancelled(str(path))
                img = av.VideoFrame.from_ndarray(_render(width, height, i, frames), format="rgb24")
                for packet in video.encode(img):
                    container.mux(packet)
                if astream is not None:
                    silence = np.zeros((2, samples_per_frame), dtype=np.float32)
                    aframe = av.AudioFrame.from_ndarray(silence, format="fltp", layout="stereo")
                    aframe.sample_rate = AUDIO_RATE
                    aframe.pts = sent_samples
                    aframe.time_base = Fraction(1, AUDIO_RATE)
                    sent_samples += samples_per_frame
                    for packet in astream.encode(aframe):
                        container.mux(packet)
            for packet in video.encode():
                container.mux(packet)
            if astream is not None:
                for packet in astream.encode():
                    container.mux(packet)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an 8-bit RGB PNG (no dependency beyond zlib)."""
    height, width, _ = rgb.shape
    rows = np.concatenate(
        [np.zeros((height, 1), dtype=np.uint8), rgb.reshape(height, width * 3)], axis=1
    )

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )
    tmp = _tmp_path(path)
    try:
        tmp.write_bytes(png)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def pad_with_free_box(src: Path, dst: Path, min_bytes: int) -> None:
    """Copy ``src`` to ``dst`` and append a sparse top-level ``free`` box up to ``min_bytes``."""
    size = src.stat().st_size
    box = max(min_bytes - size, 8)
    header = (
        struct.pack(">I4s", box, b"free")
        if box <= 0xFFFFFFFF
        else struct.pack(">I4sQ", 1, b"free", max(box, 16))
    )
    box = max(box, len(header))
    tmp = _tmp_path(dst)
    try:
        shutil.copyfile(src, tmp)
        with tmp.open("r+b") as fh:
            fh.seek(size)
            fh.write(header)
            fh.truncate(size + box)
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)


class MediaCache:
    """Produces media files on demand (off the event loop) and remembers them on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.encodes = 0
        self._jobs: dict[str, asyncio.Future[Path]] = {}
        self._cancelled = threading.Event()
        self._ready: set[str] = set()

    def close(self) -> None:
        """Abandon running encodes (called on shutdown)."""
        self._cancelled.set()

    def _ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    async def _once(self, key: str, target: Path, make: _Maker) -> Path:
        if key in self._ready:
            return target
        if await asyncio.to_thread(target.exists):
            self._ready.add(key)
            return target
        job = self._jobs.get(key)
        if job is None:
            self._ensure_root()
            job = asyncio.ensure_future(asyncio.to_thread(_run_maker, make, target))
            self._jobs[key] = job
            job.add_done_callback(lambda _: self._jobs.pop(key, None))
        path = await asyncio.shield(job)
        self._ready.add(key)
        return path

    async def video(self, shape: VideoShape) -> Path:
        """Path of the MP4 for ``shape``, encoding (once) if needed."""
        base = self.root / f"{shape.stem()}.mp4"

        def make_base(target: Path) -> None:
            encode_mp4(
                target, shape.width, shape.height, shape.frames, shape.audio, self._cancelled
            )
            self.encodes += 1

        path = await self._once(base.name, base, make_base)
        if shape.min_bytes <= path.stat().st_size:
            return path
        padded = self.root / f"{shape.stem()}_min{shape.min_bytes}.mp4"

        def make_padded(target: Path) -> None:
            pad_with_free_box(path, target, shape.min_bytes)

        return await self._once(padded.name, padded, make_padded)

    async def last_frame(self, shape: VideoShape) -> Path:
        """Path of a PNG equal to the video's last frame (same size)."""
        target = self.root / f"{shape.width}x{shape.height}_{shape.frames}f_last.png"

        def make(target: Path) -> None:
            write_png(target, _render(shape.width, shape.height, shape.frames - 1, shape.frames))

        return await self._once(target.name, target, make)

    def prewarm(self, shape: VideoShape, last_frame: bool) -> None:
        """Start producing the files for a new task in the background."""
        futures = [asyncio.ensure_future(self.video(shape))]
        if last_frame:
            futures.append(asyncio.ensure_future(self.last_frame(shape)))
        for fut in futures:
            fut.add_done_callback(_swallow)


def _run_maker(make: _Maker, target: Path) -> Path:
    make(target)
    return target


def _swallow(fut: asyncio.Future[Path]) -> None:
    # Prewarm failures resurface when the file is actually requested.
    if not fut.cancelled():
        fut.exception()
