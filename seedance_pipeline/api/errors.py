"""Every error answer of the API is one `ErrorBody`: a stable code, a sentence that names the
problem and the fix, and for 422s every field at fault (`rows[2].duration`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from seedance_pipeline.core.api_schema import ErrorBody, ErrorDetail, FieldError


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields)
        self.headers = headers


def not_found(job_id: str, what: str = "job") -> ApiError:
    """Another tenant's job is indistinguishable from a missing one."""
    return ApiError(404, "not_found", f"no {what} {job_id!r} for this API key")


def error_response(
    status: int,
    code: str,
    message: str,
    fields: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, fields=list(fields)))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def field_name(loc: Sequence[Any]) -> str:
    """`("body", "rows", 2, "duration")` -> `rows[2].duration`."""
    out = ""
    for part in loc:
        if part in ("body", "query", "path", "header", "cookie") and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.fields, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            FieldError(field=field_name(err.get("loc", ())), message=_message(err))
            for err in exc.errors()
        ]
        message = "; ".join(f"{f.field}: {f.message}" for f in fields[:5]) or "invalid request"
        return error_response(422, "invalid_request", message, fields)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(
            exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {})
        )


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")
