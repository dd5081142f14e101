"""Read the pixel size of an inline (``data:``) image without decoding it.

The emulator never fetches remote URLs, but for base64 images it can learn the
real size cheaply. That lets it enforce the provider's image limits and resolve
``ratio: adaptive`` the way the real service does (closest supported ratio).
"""

from __future__ import annotations

import base64
import binascii
import math
import struct

_DATA_IMAGE_PREFIX = "data:image/"


def decode_data_url(url: str) -> bytes | None:
    """Bytes of a ``data:<mime>;base64,<payload>`` URL, or None if it is not one."""
    if not url.startswith("data:") or ";base64," not in url:
        return None
    payload = url.split(";base64,", 1)[1]
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        return None


def sniff_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) for PNG, GIF, JPEG, WebP and BMP headers, else None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return abs(int(w)), abs(int(h))
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return int(w) & 0x3FFF, int(h) & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(w), int(h)
        i += 2 + length
    return None


def data_url_size(url: str) -> tuple[int, int] | None:
    """Pixel size of an inline image URL, or None when unknown (remote URL, odd format)."""
    if not url.startswith(_DATA_IMAGE_PREFIX):
        return None
    data = decode_data_url(url)
    return sniff_size(data) if data else None


def closest_ratio(width: int, height: int, ratios: list[str]) -> str:
    """The ratio (``"W:H"``) nearest to width/height on a log scale."""

    def distance(r: str) -> float:
        a, b = (int(x) for x in r.split(":"))
        return abs(math.log((width / height) / (a / b)))

    return min(ratios, key=distance)
