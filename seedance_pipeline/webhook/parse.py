"""Body bytes -> `ProviderTask`, telling "not JSON" (400) from "JSON of the wrong shape" (422).

`pydantic_core.from_json` rather than `json.loads`: it refuses deep nesting with a ValueError
instead of a RecursionError and never decodes invalid UTF-8 into something else.
"""

from __future__ import annotations

import pydantic_core
from pydantic import ValidationError

from seedance_pipeline.core.models import ProviderTask

_MAX_REASON_CHARS = 200


class BadBody(Exception):
    """The body cannot be a callback; `status_code` is 400 or 422, `reason` is safe to echo."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason


def parse_task(body: bytes) -> ProviderTask:
    try:
        data = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError:
        raise BadBody(400, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadBody(400, "body must be a JSON object (the provider's task object)")
    try:
        return ProviderTask.model_validate(data)
    except ValidationError as exc:
        raise BadBody(422, f"invalid task object: {_reason(exc)}") from None


def _reason(exc: ValidationError) -> str:
    """The first problem only, without the offending input (it is the caller's, not ours)."""
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    text = f"{where}: {first['msg']}"
    more = exc.error_count() - 1
    if more:
        text += f" (and {more} more)"
    return text[:_MAX_REASON_CHARS]
