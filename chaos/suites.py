"""The bad-input and security half of the reliability report: the pytest suites that attack
the pipeline's edges (requests, config files, callback bodies and signals, provider answers,
secrets, outbound hosts, object keys), run by `make chaos` so the report states what they
proved in the same run, and by `make test` on every change.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from bench.stack import ROOT

SUITES = ("tests/security", "tests/webhook/test_fuzz.py", "tests/pipeline/test_secrets.py")


@dataclass
class SuiteResult:
    module: str
    """Path from the repository root."""
    attacks: str
    """First sentence of the module's docstring: what it attacks."""
    passed: int
    failed: int
    seconds: float


def _modules() -> list[Path]:
    found: list[Path] = []
    for entry in SUITES:
        path = ROOT / entry
        found += sorted(path.glob("test_*.py")) if path.is_dir() else [path]
    return found


def _attacks(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    return first.split(". ")[0].rstrip(".") + "." if first else "-"


def run_suites() -> list[SuiteResult]:
    """Run every suite once (junit XML) and count passes and failures per module."""
    modules = _modules()
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}"]
            + [str(m.relative_to(ROOT)) for m in modules],
            cwd=ROOT,
            check=False,
            stdout=subprocess.DEVNULL,
        )
        # pytest's own report, written a moment ago: not untrusted input.
        cases = ET.parse(xml).getroot().iter("testcase") if xml.exists() else iter(())  # noqa: S314
        by_module: dict[str, SuiteResult] = {
            str(m.relative_to(ROOT)): SuiteResult(str(m.relative_to(ROOT)), _attacks(m), 0, 0, 0.0)
            for m in modules
        }
        for case in cases:
            module = case.get("classname", "").split(".")
            path = None
            for i in range(len(module), 0, -1):  # "tests.security.test_x.TestClass" -> the file
                candidate = "/".join(module[:i]) + ".py"
                if candidate in by_module:
                    path = candidate
                    break
            if path is None:
                continue
            result = by_module[path]
            bad = case.find("failure") is not None or case.find("error") is not None
            result.failed += bad
            result.passed += not bad and case.find("skipped") is None
            result.seconds += float(case.get("time", 0))
    if not any(r.passed or r.failed for r in by_module.values()):
        raise RuntimeError("the bad-input and security suites did not run (no junit results)")
    return list(by_module.values())
