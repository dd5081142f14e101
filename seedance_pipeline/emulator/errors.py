"""Provider-shaped errors.

Every non-2xx answer on ``/api/v3`` uses the provider's envelope
``{"error": {"code", "message", "param"?, "type"}}`` so that client code which
parses real errors (the SDKs unwrap ``body["error"]``) works unchanged against
the emulator. Messages end in ``Request id: <id>`` like the real ones.
"""

from __future__ import annotations

from typing import Any

# HTTP status -> the provider's ``type`` word (reference section 9.1).
TYPE_BY_STATUS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


class ApiError(Exception):
    """An error answer; raised anywhere in request handling, rendered by the app."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.type = type_ or TYPE_BY_STATUS.get(status, "Error")
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        """The JSON body, with the request id appended to the message."""
        err: dict[str, Any] = {
            "code": self.code,
            "message": f"{self.message} Request id: {request_id}",
        }
        if self.param is not None:
            err["param"] = self.param
        err["type"] = self.type
        return {"error": err}


def because(reason: str) -> str:
    """The provider's message template: ``The request failed because <reason>.``"""
    return f"The request failed because {reason}."


def missing(param: str, reason: str | None = None) -> ApiError:
    """400 MissingParameter for an absent required field."""
    text = reason or f"the required parameter `{param}` is missing"
    return ApiError(400, "MissingParameter", because(text), param=param)


def invalid(param: str, reason: str, code: str = "InvalidParameter") -> ApiError:
    """400 InvalidParameter (or a sub-code) for a bad value or combination."""
    return ApiError(400, code, because(reason), param=param)
