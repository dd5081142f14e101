"""Bodies that break the API's promise, for the `get_bad_body` / `create_bad_body` faults.

Each shape starts from the answer the emulator would have sent, so a client sees a plausible
mistake (the real task ID, a real-looking object) rather than noise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from seedance_pipeline.emulator.faults import BodyShape


@dataclass(frozen=True)
class RawAnswer:
    """Bytes to send as they are, with their status and media type."""

    content: bytes
    status: int = 200
    media_type: str = "application/json"


def bad_body(
    answer: dict[str, Any],
    shape: BodyShape,
    *,
    status: int = 200,
    unknown_status: str = "exploded",
    huge_bytes: int = 5 * 1024 * 1024,
) -> RawAnswer:
    """`answer` (a task object or a create answer) broken in the way `shape` names."""
    if shape == "not_json":
        text = json.dumps(answer)
        return RawAnswer(text[: max(1, len(text) // 2)].encode(), status)
    if shape == "not_object":
        return RawAnswer(json.dumps([answer]).encode(), status)
    if shape == "missing_fields":
        kept = {k: v for k, v in answer.items() if k not in ("id", "status")}
        return RawAnswer(json.dumps(kept).encode(), status)
    if shape == "wrong_types":
        wrong = {**answer, "id": 12345, "status": ["running"], "usage": "lots", "created_at": "now"}
        return RawAnswer(json.dumps(wrong).encode(), status)
    if shape == "unknown_status":
        return RawAnswer(json.dumps({**answer, "status": unknown_status}).encode(), status)
    padded = {**answer, "padding": "x" * huge_bytes}
    return RawAnswer(json.dumps(padded).encode(), status)
