"""Cost ledger activities: record what each job attempt cost, claim provider tasks, and
check budgets before a submission.

The ledger keeps one row per job attempt the provider may bill, upserted by
(job_id, run, submit_no), so a retried activity writes the same row again instead of a second
one, and a rerun adds its own rows. A provider task belongs to the create that claimed it first
(`claim_task`): reconciliation adopts a listed task only when its claim is won, and a row for a
task another create owns is refused (never one bill recorded twice). The store is chosen by
URL: `sqlite:///path` (default, one host) or `postgresql://...` (several workers). Reports
(`starter.py costs`, `reconcile`) read the same tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from seedance_pipeline.adapters.ledger_schema import Hold, Ledger, TaskClaimedElsewhere
from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.budget import (
    BudgetCheckInput,
    BudgetRelease,
    BudgetVerdict,
    RouteBudget,
    Spend,
    decide,
    hold_cutoff,
    periods,
)
from seedance_pipeline.core.models import (
    ClaimTaskInput,
    FindClaimsInput,
    LedgerEntry,
    TaskClaim,
    UnattributedTask,
)


class LedgerActivities:
    def __init__(
        self,
        ledger: Ledger,
        budgets: Mapping[str, RouteBudget] | None = None,
        tenant_budgets: Mapping[str, Mapping[str, RouteBudget]] | None = None,
    ) -> None:
        """`tenant_budgets`: tenant -> route -> caps (`api.tenants.<t>.budgets`)."""
        self._ledger = ledger
        self._budgets = dict(budgets or {})
        self._tenant_budgets = {t: dict(b) for t, b in (tenant_budgets or {}).items()}

    @activity.defn(name="record_cost")
    async def record_cost(self, entry: LedgerEntry) -> None:
        """Upsert the attempt's row (claiming its task); the job's budget hold ends with it."""
        try:
            await asyncio.to_thread(self._ledger.upsert, entry)
        except TaskClaimedElsewhere as exc:
            owner = exc.owner
            raise ApplicationError(
                str(exc),
                {
                    "code": et.TASK_CLAIMED_ELSEWHERE,
                    "message": str(exc),
                    "owner": owner.model_dump(mode="json"),
                },
                type=et.TASK_CLAIMED_ELSEWHERE,
                non_retryable=True,
            ) from None

    @activity.defn(name="claim_task")
    async def claim_task(self, data: ClaimTaskInput) -> TaskClaim:
        """Claim a provider task for one create; the owner, `won` when it is the asker.

        A job claims the task of every create the provider took (so no other job's
        reconciliation can adopt it) and adopts a listed task only when it wins the claim."""
        return await asyncio.to_thread(self._ledger.claim, data, datetime.now(UTC))

    @activity.defn(name="find_claims")
    async def find_claims(self, data: FindClaimsInput) -> dict[str, TaskClaim]:
        """The claimed ones of `task_ids`, with their owners (a read: claims nothing)."""
        return await asyncio.to_thread(self._ledger.claims, data.task_ids)

    @activity.defn(name="record_unattributed")
    async def record_unattributed(self, task: UnattributedTask) -> bool:
        """Keep a billed task nobody could claim, with its candidates; False when a create
        has claimed it meanwhile (its row records the money)."""
        return await asyncio.to_thread(self._ledger.record_unattributed, task)

    @activity.defn(name="check_budget")
    async def check_budget(self, data: BudgetCheckInput) -> BudgetVerdict:
        """May this job submit? Refused when billed spend + holds + its estimate would pass a
        cap of its route, or of its tenant on that route (measured on the tenant's rows
        only); when allowed, its estimate is held in each scope until it records its cost."""
        at = data.at or datetime.now(UTC)
        route_check = data.model_copy(update={"tenant": None})
        verdict = await self._check(route_check, self._budgets.get(data.route), at)
        if not verdict.allowed or data.tenant is None:
            return verdict
        tenant_budget = self._tenant_budgets.get(data.tenant, {}).get(data.route)
        if tenant_budget is None or not tenant_budget.capped:
            return verdict
        tenant_verdict = await self._check(data, tenant_budget, at)
        if not tenant_verdict.allowed:
            # The route's hold must not outlive a job that will not submit.
            await asyncio.to_thread(self._ledger.release, data.job_id)
        return tenant_verdict

    async def _check(
        self, data: BudgetCheckInput, budget: RouteBudget | None, at: datetime
    ) -> BudgetVerdict:
        if budget is None or not budget.capped:
            return decide(data, [], Spend(billed={}))
        windows = periods(budget, at)
        hold = Hold(
            data.job_id, data.route, data.currency, round(data.estimate, 6), at, data.tenant
        )
        return await asyncio.to_thread(
            self._ledger.check_budget,
            hold,
            windows,
            hold_cutoff(budget, at),
            lambda spend: decide(data, windows, spend),
        )

    @activity.defn(name="release_budget")
    async def release_budget(self, data: BudgetRelease) -> None:
        """The job ended (any outcome): its estimate no longer counts against a cap."""
        await asyncio.to_thread(self._ledger.release, data.job_id)
