"""Streaming file responses with HEAD, single Range requests and download faults.

Output videos can be hundreds of MB (``min_video_bytes``), so files are always
streamed from disk in chunks and never held in memory. The same streaming loop
implements ``slow_download`` (throttled chunks) and ``truncated_download``
(close the socket after N bytes while ``Content-Length`` promised more), which
is how a flaky object store looks to a downloader.
"""

from __future__ import annotations

import asyncio
import re
import time
from email.utils import formatdate
from pathlib import Path
from typing import BinaryIO

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from seedance_pipeline.emulator.connection import drop_connection
from seedance_pipeline.emulator.faults import TruncatedDownload

CHUNK = 256 * 1024
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end inclusive) for one satisfiable range, None to send everything,
    or ``"unsatisfiable"``. Multi-range and malformed headers are ignored (RFC 9110
    lets a server answer 200 with the whole file)."""
    if not header:
        return None
    m = _RANGE_RE.match(header.strip())
    if m is None:
        return None
    first, last = m.groups()
    if first == "" and last == "":
        return None
    if first == "":
        length = int(last)
        if length == 0:
            return "unsatisfiable"
        return max(size - length, 0), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or end < start:
        return "unsatisfiable"
    return start, end


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    """Set ``gone`` when the client disconnects, so a big download stops reading."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


class StreamFileResponse(Response):
    """A file (or byte range of it) streamed in chunks, with optional faults."""

    def __init__(
        self,
        path: Path,
        media_type: str,
        *,
        range_header: str | None,
        head: bool,
        bytes_per_second: int | None = None,
        truncate: TruncatedDownload | None = None,
    ) -> None:
        stat = path.stat()
        self.path = path
        self.size = stat.st_size
        self.head = head
        self.bytes_per_second = bytes_per_second
        self.cut_at = truncate.cut_at(self.size) if truncate is not None else None
        self.background = None
        self.media_type = media_type
        headers = {
            "accept-ranges": "bytes",
            "last-modified": formatdate(stat.st_mtime, usegmt=True),
            "etag": f'"{stat.st_mtime_ns:x}-{self.size:x}"',
            "cache-control": "private, max-age=86400",
        }
        rng = parse_range(range_header, self.size)
        if rng == "unsatisfiable":
            self.status_code = 416
            self.start, self.end = 0, -1
            headers["content-range"] = f"bytes */{self.size}"
        elif isinstance(rng, tuple):
            self.status_code = 206
            self.start, self.end = rng
            headers["content-range"] = f"bytes {self.start}-{self.end}/{self.size}"
        else:
            self.status_code = 200
            self.start, self.end = 0, self.size - 1
        self.init_headers(headers)
        self.headers["content-length"] = str(self.end - self.start + 1)
        self.headers["content-type"] = media_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        if self.head or self.status_code == 416:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone))
        fh = await asyncio.to_thread(self.path.open, "rb")
        try:
            await self._stream(fh, scope, send, gone)
        finally:
            watcher.cancel()
            fh.close()

    async def _stream(self, fh: BinaryIO, scope: Scope, send: Send, gone: asyncio.Event) -> None:
        pos = self.start
        fh.seek(pos)
        began = time.monotonic()
        sent = 0
        chunk_size = CHUNK
        if self.bytes_per_second is not None:
            chunk_size = max(1, min(CHUNK, self.bytes_per_second // 10))
        while pos <= self.end:
            length = min(chunk_size, self.end - pos + 1)
            if self.cut_at is not None and pos + length > self.cut_at:
                length = self.cut_at - pos
                if length > 0:
                    data = await asyncio.to_thread(fh.read, length)
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                await drop_connection(scope, "close")
                return
            data = await asyncio.to_thread(fh.read, length)
            if not data or gone.is_set():  # file shrank, or the client went away
                await drop_connection(scope, "close")
                return
            pos += len(data)
            sent += len(data)
            more = pos <= self.end
            await send({"type": "http.response.body", "body": data, "more_body": more})
            if self.bytes_per_second is not None and more:
                ahead = sent / self.bytes_per_second - (time.monotonic() - began)
                if ahead > 0:
                    await asyncio.sleep(ahead)
