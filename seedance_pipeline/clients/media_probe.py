"""Read a stored video with a real demuxer (PyAV): codec, frame size, duration.

Used by `make demo` to prove every stored object is a playable MP4 of the requested shape,
and by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import av


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    seconds: float


def probe_video(uri_or_path: str) -> VideoInfo:
    path = (
        Path(urlsplit(uri_or_path).path) if uri_or_path.startswith("file:") else Path(uri_or_path)
    )
    with av.open(str(path), mode="r") as container:
        stream = container.streams.video[0]
        if container.duration is None:
            raise ValueError(f"{path}: no duration: not a playable video")
        return VideoInfo(
            codec=stream.codec_context.name,
            width=stream.width,
            height=stream.height,
            seconds=float(container.duration) / 1e6,
        )


def matches(info: VideoInfo, width: int, height: int, seconds: int) -> bool:
    """Frame size exact; duration within a frame or two of the request (24·d+1 frames)."""
    return (
        info.codec == "h264"
        and (info.width, info.height) == (width, height)
        and abs(info.seconds - seconds) <= 0.25
    )
