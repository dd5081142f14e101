"""The rules of the house for workflow code (docs/architecture.md), checked on the source:
one history shape (no patches or version switches while nothing is deployed), small functions
and modules, no `assert` deciding a job's fate, external signals only through
`workflows/signals.py`, and a worker that registers exactly the
activities the workflows' stubs declare."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
from temporalio import activity
from temporalio.client import Client

from seedance_pipeline.adapters.ledger import open_ledger
from seedance_pipeline.adapters.object_store import open_store
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.worker import activities
from seedance_pipeline.workflows import activity_stubs

WORKFLOWS = Path(__file__).resolve().parents[2] / "seedance_pipeline" / "workflows"
SOURCES = sorted(WORKFLOWS.rglob("*.py"))
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 300


def test_one_history_shape() -> None:
    for path in SOURCES:
        text = path.read_text()
        assert "patched(" not in text and "_v3" not in text, path


def test_functions_and_modules_stay_small() -> None:
    for path in SOURCES:
        text = path.read_text()
        assert len(text.splitlines()) <= MAX_MODULE_LINES, path
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                assert length <= MAX_FUNCTION_LINES, f"{path.name}:{node.name} has {length} lines"


def test_no_assert_decides_a_job() -> None:
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        asserts = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assert)]
        assert not asserts, f"{path.name} asserts at lines {asserts}: raise invariant_broken(...)"


def test_workflows_signal_only_through_the_module_that_keeps_a_cancel() -> None:
    """A direct external signal loses a cancel that arrives while it is in flight."""
    for path in SOURCES:
        if path.name != "signals.py":
            assert "get_external_workflow_handle(" not in path.read_text(), path


async def test_the_worker_registers_exactly_the_stubs(client: Client, tmp_path: Path) -> None:
    settings = load_settings()
    async with httpx.AsyncClient() as http:
        acts = activities(
            client,
            settings,
            http,
            open_store(str(tmp_path / "out")),
            open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}"),
            "test",
        )
    registered = [_name(a) for a in acts.all]
    declared = [_name(s) for s in activity_stubs.ALL]
    assert sorted(registered) == sorted(declared)
    assert len(set(registered)) == len(registered)
    assert [_name(a) for a in acts.submit_queue] == ["create_task"]


def _name(fn: object) -> str:
    defn = activity._Definition.from_callable(fn)  # type: ignore[arg-type]
    assert defn is not None and defn.name
    return defn.name
