"""The provider's published capacity limits, as the emulator enforces them.

Reference section 0, C3 and C4 (the official BytePlus tutorial, "Rate limits"): per account
and model version, an enterprise account may run 10 tasks at once and create 600 per minute,
an individual one 3 and 180; at 4k, 1 and 15. Tasks over the concurrency limit wait
`queued`; creates over the RPM limit are refused with 429. Over every model together an
account may hold 120 tasks `queued`; the next create is refused with 429. The emulator is
one account: every accepted key shares these counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AccountClass = Literal["enterprise", "individual"]

RPM_CODE_MODEL = "ModelAccountRpmRateLimitExceeded"
"""429 code for a create over a model's RPM when called with a model ID (reference 9.2)."""
RPM_CODE_ENDPOINT = "RateLimitExceeded.EndpointRPMExceeded"
"""429 code for the same through an endpoint ID (`ep-...`), whose limits are per endpoint."""
QUEUE_CAP_CODE = "RateLimitExceeded.QueuedTaskLimitExceeded"
"""429 code for the 120-queued cap. The real code is unknown (section 0, "Still unknown")."""
FOUR_K = "4k"


@dataclass(frozen=True)
class Limits:
    """Effective limits; None means "no limit" (an explicitly unlimited emulator)."""

    concurrency_per_model: int | None
    rpm_per_model: int | None
    queued_per_account: int | None
    concurrency_4k: int | None
    rpm_4k: int | None

    def concurrency(self, resolution: str) -> int | None:
        return self.concurrency_4k if resolution == FOUR_K else self.concurrency_per_model

    def rpm(self, resolution: str) -> int | None:
        return self.rpm_4k if resolution == FOUR_K else self.rpm_per_model


PRESETS: dict[AccountClass, Limits] = {
    "enterprise": Limits(10, 600, 120, 1, 15),
    "individual": Limits(3, 180, 120, 1, 15),
}
"""The 4k figures are published once for both classes (C3); applied to each as given."""

UNLIMITED = Limits(None, None, None, None, None)


def bucket(model_id: str, resolution: str) -> str:
    """The counter a task counts against: its model, with 4k apart (its own, lower limits;
    whether 4k tasks also count against the model's own limits is unknown: assumed not)."""
    return f"{model_id}@4k" if resolution == FOUR_K else model_id
