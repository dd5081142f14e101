"""Reference checks before any paid call: each image, video and audio the request names is
fetched from the worker (bounded by the provider's size limit), its type and size checked and
its sha256 recorded, so a bad reference costs nothing and the manifest pins what was used.

Addresses that are not globally routable (private, loopback, link-local, shared/CGNAT,
reserved, IPv4-mapped forms of those) are refused (the worker must not become a proxy
into its own network) unless `references.allow_private_hosts` is set, as tests do. Redirects
are followed by hand, up to three, with the host check repeated at every hop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import socket
from urllib.parse import urljoin, urlsplit

import httpx
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.addresses import public
from seedance_pipeline.core.models import (
    CheckedReference,
    CheckReferencesInput,
    Outcome,
    Reference,
    ReferenceKind,
)
from seedance_pipeline.core.settings import ReferenceSettings, Settings

log = structlog.get_logger(__name__)
MAX_REDIRECTS = 3
INVALID = et.REFERENCE_INVALID
UNREACHABLE = et.REFERENCE_UNREACHABLE


class ReferenceProblem(Exception):
    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def sniff(head: bytes) -> str | None:
    """The media family from magic bytes, for servers that send no useful Content-Type."""
    if (
        head.startswith(b"\x89PNG")
        or head.startswith(b"\xff\xd8\xff")
        or head.startswith(b"GIF8")
        or head.startswith(b"BM")
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or head[:4] in (b"II*\x00", b"MM\x00*")
    ):
        return "image"
    if head[4:8] == b"ftyp":
        return "video"
    if (
        (head[:4] == b"RIFF" and head[8:12] == b"WAVE")
        or head.startswith(b"ID3")
        or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")
    ):
        return "audio"
    return None


def _limits(kind: ReferenceKind, cfg: ReferenceSettings) -> tuple[int, tuple[str, ...]]:
    if kind == ReferenceKind.IMAGE:
        return cfg.max_image_bytes, cfg.image_types
    if kind == ReferenceKind.VIDEO:
        return cfg.max_video_bytes, cfg.video_types
    return cfg.max_audio_bytes, cfg.audio_types


async def _refuse_private(host: str, cfg: ReferenceSettings) -> None:
    if cfg.allow_private_hosts:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ReferenceProblem(f"host {host!r} does not resolve", retryable=True) from None
    for info in infos:
        address = str(info[4][0])
        if not public(address):  # only globally routable unicast (core.addresses)
            raise ReferenceProblem(
                f"host {host!r} resolves to a private address ({address}); refused"
            )


class ReferenceActivities:
    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self._http = http
        self._cfg = settings.references

    @activity.defn
    async def check_references(self, data: CheckReferencesInput) -> list[CheckedReference]:
        structlog.contextvars.bind_contextvars(job_id=data.job_id)
        checked: list[CheckedReference] = []
        for index, ref in enumerate(data.request.references):
            where = f"references[{index}] (content[{index + 1}])"
            try:
                checked.append(await self._check(index, ref))
            except ReferenceProblem as exc:
                message = f"{where}: {exc}"
                log.info("reference.refused", index=index, reason=str(exc))
                raise ApplicationError(
                    message,
                    {
                        "code": INVALID if not exc.retryable else UNREACHABLE,
                        "message": message,
                        "outcome": Outcome.FAILED_INPUT.value,
                    },
                    type=UNREACHABLE if exc.retryable else INVALID,
                    non_retryable=not exc.retryable,
                ) from None
        return checked

    async def _check(self, index: int, ref: Reference) -> CheckedReference:
        max_bytes, types = _limits(ref.kind, self._cfg)
        scheme = urlsplit(ref.url).scheme.lower()
        if scheme == "asset":
            return CheckedReference(index=index, url=ref.url)
        if scheme == "data":
            return self._check_data(index, ref, max_bytes)
        url = ref.url
        for _ in range(MAX_REDIRECTS + 1):
            host = urlsplit(url).hostname or ""
            await _refuse_private(host, self._cfg)
            try:
                async with self._http.stream(
                    "GET", url, follow_redirects=False, timeout=self._cfg.timeout_seconds
                ) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers.get("Location", ""))
                        continue
                    if response.status_code >= 500 or response.status_code == 429:
                        raise ReferenceProblem(
                            f"{response.status_code} from host {host}", retryable=True
                        )
                    if response.status_code >= 400:
                        raise ReferenceProblem(f"{response.status_code} from host {host}")
                    declared = response.headers.get("Content-Type", "").split(";")[0].strip()
                    length = response.headers.get("Content-Length")
                    if length is not None and length.isdigit() and int(length) > max_bytes:
                        raise ReferenceProblem(
                            f"{int(length):,} bytes; the {ref.kind.value} limit is "
                            f"{max_bytes:,} bytes"
                        )
                    digest, size, head = hashlib.sha256(), 0, b""
                    async for chunk in response.aiter_bytes(256 * 1024):
                        if len(head) < 16:
                            head += chunk[:16]
                        size += len(chunk)
                        if size > max_bytes:
                            raise ReferenceProblem(
                                f"more than {max_bytes:,} bytes; the {ref.kind.value} limit"
                            )
                        digest.update(chunk)
            except httpx.HTTPError as exc:
                raise ReferenceProblem(
                    f"unreachable ({type(exc).__name__}) at host {host}", retryable=True
                ) from None
            if declared not in types and sniff(head) != ref.kind.value:
                raise ReferenceProblem(
                    f"content type {declared or 'unknown'!r} is not a "
                    f"supported {ref.kind.value} ({', '.join(types)})"
                )
            return CheckedReference(
                index=index,
                url=ref.url,
                content_type=declared or None,
                size=size,
                sha256=digest.hexdigest(),
            )
        raise ReferenceProblem(f"more than {MAX_REDIRECTS} redirects")

    def _check_data(self, index: int, ref: Reference, max_bytes: int) -> CheckedReference:
        header, _, payload = ref.url.partition(",")
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ReferenceProblem("data URL is not valid base64") from None
        if len(raw) > max_bytes:
            raise ReferenceProblem(f"{len(raw):,} bytes; the image limit is {max_bytes:,} bytes")
        if sniff(raw[:16]) != "image":
            raise ReferenceProblem("data URL does not hold a supported image")
        return CheckedReference(
            index=index,
            url=header + ",...",
            content_type=header[5:].split(";")[0],
            size=len(raw),
            sha256=hashlib.sha256(raw).hexdigest(),
        )
