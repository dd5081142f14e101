"""Whose is a listed task? The create's seed fingerprint first, task claims second.

After an ambiguous create, the provider's list is read (`find_tasks`) and each task of the
right model and shape is sorted: `mine` echoes the create's derived seed (`core.fingerprint`),
`others` echoes another seed or is claimed by another create, `unproven` carries no seed to
compare (the request pinned its seed, or the list item omits it) and nobody claimed it. The
reconcile phase adopts a task of `mine` once it wins its claim (`claim_task`); with nothing
`mine` and nothing `unproven`, no task of this create exists and a new create is safe; with
only `unproven` ones, proof is impossible: a polling-only job may still adopt a lone candidate
whose claim it wins (today's rule), and any candidate it does not adopt is watched as an
unattributed billed task (`core.follow.watch_unattributed`) so its money is recorded anyway.
Pure: the workflow imports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from seedance_pipeline.core.fingerprint import Fingerprint, verdict
from seedance_pipeline.core.models import FindTasksInput, ProviderTask, ResolvedModel, TaskClaim

LIST_MARGIN_SECONDS = 60
"""Listed tasks created this long before the create or after now are still its candidates
(the provider's clock and ours differ)."""


def around(job_id: str, model: ResolvedModel, since: datetime, now: datetime) -> FindTasksInput:
    """The list query for tasks of `model` created between a create (`since`) and `now`."""
    return FindTasksInput(
        job_id=job_id,
        route=model.route,
        model_id=model.model_id,
        created_after=int(since.timestamp()) - LIST_MARGIN_SECONDS,
        created_before=int(now.timestamp()) + LIST_MARGIN_SECONDS,
    )


@dataclass(frozen=True)
class Sorted:
    mine: tuple[ProviderTask, ...]
    unproven: tuple[ProviderTask, ...]
    others: tuple[ProviderTask, ...]

    @property
    def none_can_be_mine(self) -> bool:
        """No listed task could be this create's: another create is safe."""
        return not self.mine and not self.unproven


def sort_listed(
    listed: Iterable[ProviderTask],
    *,
    me: Fingerprint,
    expected_seed: int | None,
    claims: Mapping[str, TaskClaim],
) -> Sorted:
    """Sort listed candidates for the create `me` (expected seed from `expected_seed`)."""
    mine: list[ProviderTask] = []
    unproven: list[ProviderTask] = []
    others: list[ProviderTask] = []
    for task in listed:
        claim = claims.get(task.id)
        if claim is not None and not claim.owned_by(me.job_id, me.run, me.submit_no):
            others.append(task)
            continue
        found = verdict(task, expected_seed)
        (mine if found == "match" else others if found == "mismatch" else unproven).append(task)
    return Sorted(tuple(mine), tuple(unproven), tuple(others))
