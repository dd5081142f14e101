"""`starter.py doctor --live` (clients/doctor_live.py) through the CLI: without a key it
exits 2 naming the variable; against the emulator with its key it runs every free check and
prints a verdict per check, and writes the report file."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from seedance_pipeline.cli import run
from seedance_pipeline.emulator.testing import EmulatorHandle, callback_receiver, running_emulator

PRO = "dreamina-seedance-2-0-260128"
FREE_CHECKS = {
    "key and route",
    "model mini (dreamina-seedance-2-0-mini-260615)",
    "model fast (dreamina-seedance-2-0-fast-260128)",
    f"model pro ({PRO})",
    "callbacks",
    "account class",
    "output hosts",
    "retention",
}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    with running_emulator(data_dir=tmp_path_factory.mktemp("emu"), prewarm_media=False) as emu:
        yield emu


@pytest.fixture
def on_emulator(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    for name in ("SEEDANCE_CONFIG", "SEEDANCE_CALLBACKS__BASE_URL", "VOLC_ARK_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SEEDANCE_ROUTES__BYTEPLUS__BASE_URL", emulator.api_base)
    monkeypatch.setenv("ARK_API_KEY", emulator.api_key)
    emulator.reset()
    return emulator


def _doctor(*args: str) -> tuple[int, str]:
    """The CLI as `starter.py` runs it (a fresh session: this shell's settings read anew);
    stdout and stderr together."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(["doctor", *args])
    return code, out.getvalue() + err.getvalue()


def test_without_a_key_it_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ARK_API_KEY", raising=False)
    code, output = _doctor("--live", "--report", str(tmp_path / "r.json"))
    assert code == 2
    assert "set ARK_API_KEY" in output
    assert not (tmp_path / "r.json").exists()


def test_the_other_route_names_its_own_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("VOLC_ARK_API_KEY", raising=False)
    code, output = _doctor("--live", "--route", "volcengine", "--report", str(tmp_path / "r.json"))
    assert (code, "set VOLC_ARK_API_KEY" in output) == (2, True)


def test_free_checks_against_the_emulator(on_emulator: EmulatorHandle, tmp_path: Path) -> None:
    report = tmp_path / "live.json"
    code, output = _doctor("--live", "--report", str(report))
    data = json.loads(report.read_text())
    verdicts = {c["name"]: c["verdict"] for c in data["checks"]}
    assert set(verdicts) == FREE_CHECKS
    assert verdicts["key and route"] == "ok"
    # The emulator validates an empty body before anything else: activation stays unknown.
    assert verdicts[f"model pro ({PRO})"] == "unchecked"
    assert verdicts["callbacks"] == "info"  # off
    assert {verdicts[n] for n in ("account class", "output hosts", "retention")} == {"unchecked"}
    assert code == 0
    printed = " ".join(output.split())  # rich wraps long lines
    for check in data["checks"]:  # one printed verdict per check
        line = " ".join(f"{check['verdict']} {check['name']}: {check['detail']}".split())
        assert line[:70] in printed
    assert f"report written to {report}" in printed
    stats = on_emulator.stats()
    assert stats["requests"]["create"] == {"400": 3}  # the probes: refused, no task, no bill
    assert on_emulator.tasks() == []


def test_failures_get_a_fix_and_exit_1(
    on_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    on_emulator.set_faults([{"kind": "model_not_open_404", "match": {"model": PRO}}])
    with callback_receiver() as receiver:
        monkeypatch.setenv("SEEDANCE_CALLBACKS__BASE_URL", receiver.url)
        monkeypatch.setenv("SEEDANCE_CALLBACK_SECRET", "doctor-test-secret-0123456789")
        code, output = _doctor("--live", "--report", str(tmp_path / "live.json"))
    verdicts = {c["name"]: c for c in json.loads((tmp_path / "live.json").read_text())["checks"]}
    assert code == 1
    assert verdicts[f"model pro ({PRO})"]["verdict"] == "fail"
    assert "Model activation" in verdicts[f"model pro ({PRO})"]["fix"]
    callbacks = verdicts["callbacks"]
    assert callbacks["verdict"] == "fail"
    assert "not a public address" in callbacks["detail"]  # loopback: the provider cannot call it
    assert "FAIL" in output and "fix:" in output


def test_a_refused_key_fails_the_first_check(
    on_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ARK_API_KEY", "ek-not-this-one")
    code, _ = _doctor("--live", "--json", "--report", str(tmp_path / "r.json"))
    checks = json.loads((tmp_path / "r.json").read_text())["checks"]
    assert code == 1
    assert checks[0]["name"] == "key and route" and checks[0]["verdict"] == "fail"
    assert "ARK_API_KEY" in checks[0]["detail"]
