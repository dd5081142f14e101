"""One running job as every phase sees it: its input, its book, its inbox.

Phases are plain functions of a `Job`: they read the input, call activities, and write what
they learn into the book; handlers write into the inbox. Nothing flows back the other way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio.workflow import unsafe

with unsafe.imports_passed_through():
    from seedance_pipeline.core.models import GenerationInput, ResolvedModel
    from seedance_pipeline.workflows.generation.book import JobBook
    from seedance_pipeline.workflows.generation.inbox import Inbox


@dataclass
class Job:
    inp: GenerationInput
    book: JobBook
    inbox: Inbox = field(default_factory=Inbox)
    model: ResolvedModel | None = None
    """The model of the latest resolve: what the job submits to, and what finish prices."""
    breaker: bool = False
    """The job asks the model's breaker before submitting and reports to it."""
    budget_held: bool = False
    """A budget check holds this job's estimate until the job records its cost."""

    @property
    def job_id(self) -> str:
        return self.inp.job_id
