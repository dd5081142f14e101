"""A fingerprint the provider echoes: the seed of a create that did not ask for one.

The create API has no idempotency key and no client reference, and two jobs' creates can have
the same shape, so after an ambiguous create the provider's list alone could not say whose a
task is. The task object does echo `seed` (reference §5, C12: every 2.x model takes it). When
the request leaves `seed` at -1 (the provider would pick one at random), the create sends a
seed derived from (job ID, run, submit number) instead: the provider's choice was random
anyway, the manifest records the seed, and a listed task whose seed is the derived one was made
by that create. A request that pins its own seed carries no fingerprint (several creates share
it), and reconcile must fall back to shape and claims.

2^32 seeds: with a thousand other tasks in a reconcile window (one model, a few minutes), the
odds that one of them carries a create's seed by chance are about 1 in 4 million; the task
claim (`claim_task`) settles the rest. Pure: the workflow and the create activity import it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from seedance_pipeline.core.models import GenerationRequest, ProviderTask

RANDOM_SEED = -1
"""The provider's "pick one for me" (and the request's default)."""
SEED_SPACE = 2**32
"""Seeds are in [-1, 2^32 - 1] (reference §3.1); derived ones in [0, 2^32 - 1]."""
VERSION = "v1"
"""Part of the derivation: a change of scheme must not make old tasks look like new creates."""

Verdict = Literal["match", "mismatch", "unknown"]


@dataclass(frozen=True)
class Fingerprint:
    """One create: the job, its run and the create's submit number."""

    job_id: str
    run: str
    submit_no: int

    @property
    def seed(self) -> int:
        text = f"seedance-create:{VERSION}:{self.job_id}:{self.run}:{self.submit_no}"
        digest = hashlib.sha256(text.encode()).digest()
        return int.from_bytes(digest[:8], "big") % SEED_SPACE


def create_seed(request: GenerationRequest, fingerprint: Fingerprint | None) -> int:
    """The seed the create body sends: the request's own, or the derived one when it left the
    choice to the provider. `core.request_body.build_create_body` calls this."""
    if request.seed != RANDOM_SEED or fingerprint is None:
        return request.seed
    return fingerprint.seed


def expected_seed(request: GenerationRequest, fingerprint: Fingerprint) -> int | None:
    """The seed that proves a task is this create's; None when the request pinned a seed."""
    return fingerprint.seed if request.seed == RANDOM_SEED else None


def verdict(task: ProviderTask, expected: int | None) -> Verdict:
    """Does the listed `task` carry the create's fingerprint? `unknown` when the create has
    none (a pinned seed) or the list item omits the seed (reference C11): then only shape and
    the task claim can decide."""
    if expected is None or task.seed is None:
        return "unknown"
    return "match" if task.seed == expected else "mismatch"
