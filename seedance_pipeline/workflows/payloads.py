"""Decoding a message's arguments inside a handler instead of by the SDK.

A typed one-argument signal handler sent no or two arguments raises TypeError inside the
workflow task, which fails that task and every retry of it: the workflow is stuck. Handlers
that take `*payload` and decode with `one` turn such a message into a dropped one.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)


def one(payload: tuple[Any, ...], model: type[T]) -> T | None:
    """The single argument as `model`, or None when there is not exactly one valid one."""
    if len(payload) != 1:
        return None
    try:
        return model.model_validate(payload[0])
    except ValidationError:
        return None
