"""The sync and async clients: one request builder, two transports.

Every method builds an `httpx.Request` description with `_Call` and parses the answer with the
same function, so the two clients cannot drift. A non-2xx answer raises `ApiError` carrying
the API's error code, message and the fields at fault.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from seedance_pipeline.core.api_schema import (
    IDEMPOTENCY_HEADER,
    REPLAYED_HEADER,
    BatchCreate,
    BatchProgress,
    CostReportBody,
    ErrorBody,
    EstimateResponse,
    FieldError,
    Job,
    JobCreate,
    JobList,
)

M = TypeVar("M", bound=BaseModel)
FINISHED = frozenset({"succeeded", "failed", "rejected", "cancelled"})
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class ApiError(Exception):
    """The API answered with an error; `code` is stable, `message` says what to fix."""

    def __init__(self, status: int, code: str, message: str, fields: list[FieldError]) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields


@dataclass(frozen=True)
class Created:
    """A created (or replayed) job: `replayed` is True when the idempotency key named an
    existing job."""

    job: Job
    replayed: bool


@dataclass
class _Call:
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def _job_path(job_id: str) -> str:
    return f"/v1/jobs/{quote(job_id, safe=':')}"


def _body(value: BaseModel | dict[str, Any]) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_defaults=True)
    return value


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        error = ErrorBody.model_validate(response.json()).error
        raise ApiError(response.status_code, error.code, error.message, error.fields)
    except (ValueError, KeyError):
        raise ApiError(response.status_code, "http_error", response.text[:500], []) from None


def _parse(response: httpx.Response, model: type[M]) -> M:
    _raise_for(response)
    return model.model_validate(response.json())


def _params(**values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = value.isoformat() if isinstance(value, date | datetime) else value
    return out


class _Calls:
    """The API's operations as request descriptions (shared by both clients)."""

    @staticmethod
    def create_job(body: JobCreate | dict[str, Any], idempotency_key: str | None) -> _Call:
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else {}
        return _Call("POST", "/v1/jobs", json=_body(body), headers=headers)

    @staticmethod
    def list_jobs(**filters: Any) -> _Call:
        if "job_state" in filters:
            filters["state"] = filters.pop("job_state")
        return _Call("GET", "/v1/jobs", params=_params(**filters))

    @staticmethod
    def create_batch(body: BatchCreate | dict[str, Any], idempotency_key: str | None) -> _Call:
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else {}
        return _Call("POST", "/v1/batches", json=_body(body), headers=headers)

    @staticmethod
    def costs(since: date | None, until: date | None, by: str) -> _Call:
        return _Call("GET", "/v1/costs", params=_params(since=since, until=until, by=by))


def _created(response: httpx.Response) -> Created:
    job = _parse(response, Job)
    return Created(job=job, replayed=response.headers.get(REPLAYED_HEADER) == "true")


class SeedanceClient:
    """Blocking client. Use as a context manager (or call `close()`)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> SeedanceClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call) -> httpx.Response:
        return self._http.request(
            call.method, call.path, params=call.params, json=call.json, headers=call.headers
        )

    def create_job(
        self, body: JobCreate | dict[str, Any], *, idempotency_key: str | None = None
    ) -> Created:
        return _created(self._send(_Calls.create_job(body, idempotency_key)))

    def get_job(self, job_id: str) -> Job:
        return _parse(self._send(_Call("GET", _job_path(job_id))), Job)

    def list_jobs(self, **filters: Any) -> JobList:
        """Filters: outcome, job_state, model, batch, created_after, created_before, limit,
        cursor."""
        return _parse(self._send(_Calls.list_jobs(**filters)), JobList)

    def cancel_job(self, job_id: str) -> Job:
        return _parse(self._send(_Call("POST", _job_path(job_id) + "/cancel")), Job)

    def estimate(self, body: JobCreate | dict[str, Any]) -> EstimateResponse:
        return _parse(self._send(_Call("POST", "/v1/estimate", json=_body(body))), EstimateResponse)

    def create_batch(
        self, body: BatchCreate | dict[str, Any], *, idempotency_key: str | None = None
    ) -> BatchProgress:
        return _parse(self._send(_Calls.create_batch(body, idempotency_key)), BatchProgress)

    def get_batch(self, batch_id: str) -> BatchProgress:
        path = f"/v1/batches/{quote(batch_id, safe='')}"
        return _parse(self._send(_Call("GET", path)), BatchProgress)

    def costs(
        self, *, since: date | None = None, until: date | None = None, by: str = "day"
    ) -> CostReportBody:
        return _parse(self._send(_Calls.costs(since, until, by)), CostReportBody)

    def wait(self, job_id: str, *, timeout: float = 600.0, interval: float = 1.0) -> Job:
        """Poll until the job's record is final (prefer webhooks in production)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job.state.value in FINISHED:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.state.value} after {timeout:.0f} s")
            time.sleep(interval)

    def download_video(self, job_id: str, path: str | Path, *, kind: str = "video") -> Path:
        """Stream the stored video (or `kind="last-frame"`) to `path`, following the durable
        link (a presigned S3 redirect is followed without sending the API key there)."""
        target = Path(path)
        url = _job_path(job_id) + ("/video" if kind == "video" else "/last-frame")
        response = self._http.get(url)
        if response.is_redirect:
            location = response.headers["location"]
            with httpx.stream("GET", location, timeout=self._http.timeout) as stream:
                _raise_for(stream)
                _write(target, stream.iter_bytes())
            return target
        _raise_for(response)
        _write(target, [response.content])
        return target


def _write(target: Path, chunks: Any) -> None:
    tmp = target.with_name(target.name + ".part")
    with tmp.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
    tmp.replace(target)


class AsyncSeedanceClient:
    """The same operations for asyncio code."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncSeedanceClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: _Call) -> httpx.Response:
        return await self._http.request(
            call.method, call.path, params=call.params, json=call.json, headers=call.headers
        )

    async def create_job(
        self, body: JobCreate | dict[str, Any], *, idempotency_key: str | None = None
    ) -> Created:
        return _created(await self._send(_Calls.create_job(body, idempotency_key)))

    async def get_job(self, job_id: str) -> Job:
        return _parse(await self._send(_Call("GET", _job_path(job_id))), Job)

    async def list_jobs(self, **filters: Any) -> JobList:
        return _parse(await self._send(_Calls.list_jobs(**filters)), JobList)

    async def cancel_job(self, job_id: str) -> Job:
        return _parse(await self._send(_Call("POST", _job_path(job_id) + "/cancel")), Job)

    async def estimate(self, body: JobCreate | dict[str, Any]) -> EstimateResponse:
        call = _Call("POST", "/v1/estimate", json=_body(body))
        return _parse(await self._send(call), EstimateResponse)

    async def create_batch(
        self, body: BatchCreate | dict[str, Any], *, idempotency_key: str | None = None
    ) -> BatchProgress:
        return _parse(await self._send(_Calls.create_batch(body, idempotency_key)), BatchProgress)

    async def get_batch(self, batch_id: str) -> BatchProgress:
        path = f"/v1/batches/{quote(batch_id, safe='')}"
        return _parse(await self._send(_Call("GET", path)), BatchProgress)

    async def costs(
        self, *, since: date | None = None, until: date | None = None, by: str = "day"
    ) -> CostReportBody:
        return _parse(await self._send(_Calls.costs(since, until, by)), CostReportBody)

    async def wait(self, job_id: str, *, interval: float = 1.0) -> Job:
        """Poll until the record is final; bound it with `asyncio.timeout(...)`."""
        while True:
            job = await self.get_job(job_id)
            if job.state.value in FINISHED:
                return job
            await asyncio.sleep(interval)

    async def fetch_video(self, job_id: str, *, kind: str = "video") -> bytes:
        """The stored video's bytes (or `kind="last-frame"`), following an S3 redirect."""
        url = _job_path(job_id) + ("/video" if kind == "video" else "/last-frame")
        response = await self._http.get(url)
        if response.is_redirect:
            async with httpx.AsyncClient(timeout=self._http.timeout) as plain:
                response = await plain.get(response.headers["location"])
        _raise_for(response)
        return response.content
