"""Job IDs derived from the request, so a double click is one job and N candidates are N.

The ID is the workflow ID: the caller may pass its own (an idempotency key such as its request
ID); otherwise it is a hash of the normalised request plus a candidate index.
"""

from __future__ import annotations

import hashlib
import json

from seedance_pipeline.core.models import GenerationRequest


def normalised(request: GenerationRequest) -> str:
    data = request.model_dump(mode="json")
    data["prompt"] = " ".join(request.prompt.split())
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def derive_job_id(request: GenerationRequest, candidate: int = 0, prefix: str = "job") -> str:
    digest = hashlib.sha256(f"{normalised(request)}#{candidate}".encode()).hexdigest()[:20]
    return f"{prefix}-{digest}-{candidate}"
