"""The job's workflow as a package: the shell (`workflow`), the job book (`book`), the inbox
(`inbox`) and one module per phase (`routing`, `submit`, `reconcile`, `wait`, `store`,
`finish`, and the retry and fallback policy `attempts`). `docs/architecture.md` draws it."""

from seedance_pipeline.workflows.generation.workflow import GenerationWorkflow

__all__ = ["GenerationWorkflow"]
