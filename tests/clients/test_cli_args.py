"""Bad flags and arguments: every subcommand answers with one line and exit 2, never a
traceback; each case the issue names has its own assertion.

Temporal is pointed at a closed port: a command that gets past its checks ends with exit 3
("Temporal unavailable") within milliseconds, so the fuzz needs no server and proves that
every refusal happened before anything was started.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.core import TyperGroup

from seedance_pipeline.cli import app
from seedance_pipeline.clients.cli_session import EXIT_BUG, EXIT_INVALID, EXIT_NO_TEMPORAL
from tests.clients.support import CliResult, cli

DIAGNOSTIC_PREFIXES = ("error:", "warning:", "note:", "estimate:", "interrupted")


@pytest.fixture(autouse=True)
def no_temporal(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    for name in ("SEEDANCE_REFERENCES__ALLOW_PRIVATE_HOSTS", "SEEDANCE_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    yield


def commands() -> list[tuple[list[str], Any]]:
    """Every subcommand path (`generate`, `health trip`, ...) with its click command."""
    found: list[tuple[list[str], Any]] = []

    def walk(path: list[str], command: Any) -> None:
        if isinstance(command, TyperGroup):
            if command.invoke_without_command and path:
                found.append((path, command))
            for name, sub in command.commands.items():
                walk([*path, name], sub)
        else:
            found.append((path, command))

    walk([], typer.main.get_command(app))
    return found


COMMANDS = commands()


def assert_one_line_refusal(result: CliResult, *fragments: str) -> None:
    assert result.code == EXIT_INVALID, (result.code, result.err)
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("error: "), result.err
    for fragment in fragments:
        assert fragment in result.err, (fragment, result.err)
    assert "Traceback" not in result.err + result.out


def test_every_subcommand_is_covered_and_has_help() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    for expected in (
        "generate",
        "status",
        "cancel",
        "poke",
        "extend",
        "batch",
        "list",
        "regenerate",
        "doctor",
        "setup",
        "costs",
        "reconcile",
        "health",
        "health trip",
        "health reset",
    ):
        assert expected in names, expected
    for path, _ in COMMANDS:
        shown = cli(*path, "--help")
        assert shown.code == 0 and "Usage" in shown.out, path


# ---- the cases the issue names -----------------------------------------------------------


@pytest.mark.parametrize("minutes", ["0", "-5", "100000"])
def test_extend_minutes_out_of_range(minutes: str) -> None:
    assert_one_line_refusal(cli("extend", "job-1", "--minutes", minutes), "--minutes")


def test_a_job_id_with_a_slash() -> None:
    assert_one_line_refusal(cli("generate", "a fox", "--job-id", "a/b"), "--job-id", "'a/b'")


@pytest.mark.parametrize("command", ["status", "cancel", "poke"])
def test_an_empty_job_id(command: str) -> None:
    assert_one_line_refusal(cli(command, ""), "JOB_ID empty")


def test_an_image_role_typo_is_not_folded_into_the_url() -> None:
    result = cli("generate", "a fox", "--image", "https://203.0.113.7/a.png:bogusrole")
    assert_one_line_refusal(result, "unknown role 'bogusrole'", "first_frame")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/a.png",
        "http://127.0.0.1:8700/a.png",
        "http://localhost/a.png",
        "http://[::1]/a.png",
        "http://169.254.169.254/latest/meta-data",
        "http://100.100.100.200/latest",
        "http://[::ffff:127.0.0.1]/a.png",
    ],
)
def test_a_private_or_loopback_reference_is_refused_before_anything_starts(url: str) -> None:
    result = cli("generate", "a fox", "--image", url)
    assert_one_line_refusal(result, "references[0].url", "private or loopback")


def test_private_references_are_let_through_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEEDANCE_REFERENCES__ALLOW_PRIVATE_HOSTS", "true")
    result = cli("generate", "a fox", "--image", "http://127.0.0.1:8700/a.png")
    assert result.code == EXIT_NO_TEMPORAL, result.err  # past every check, to Temporal


def test_regenerate_refuses_a_model_id_that_left_config(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "request": {"prompt": "a fox", "duration": 5},
                "model_id": "dreamina-seedance-2-0-mini-250101",
                "model_alias": "mini",
                "route": "byteplus",
            }
        )
    )
    refused = cli("regenerate", str(manifest))
    assert_one_line_refusal(refused, "dreamina-seedance-2-0-mini-250101", "--force")
    forced = cli("regenerate", str(manifest), "--force")
    assert forced.code == EXIT_NO_TEMPORAL, forced.err
    assert "warning: model ID dreamina-seedance-2-0-mini-250101" in forced.err


def test_a_bad_setting_in_this_shell_is_refused_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value the worker would never accept is not silently carried: exit 2 at once."""
    monkeypatch.setenv("SEEDANCE_STORAGE__URI", "ftp://x")
    assert_one_line_refusal(cli("generate", "a fox"), "SEEDANCE_STORAGE__URI", "ftp")
    assert_one_line_refusal(cli("status", "job-1"), "SEEDANCE_STORAGE__URI", "ftp")
    assert cli("status", "--help").code == 0  # help still shows, to find the fix
    monkeypatch.setenv("SEEDANCE_STORAGE__URI", "/tmp/outputs")
    monkeypatch.setenv("SEEDANCE_LEDGER__URL", "mysql://u:hunter2@db/ledger")
    refused = cli("list")
    assert_one_line_refusal(refused, "SEEDANCE_LEDGER__URL", "'mysql'")
    assert "hunter2" not in refused.err


def test_usage_errors_are_one_line() -> None:
    assert_one_line_refusal(cli("bogus"), "No such command")
    assert_one_line_refusal(cli("generate"), "Missing argument")
    assert_one_line_refusal(cli("generate", "x", "--duration", "five"), "--duration")
    assert_one_line_refusal(cli("list", "--outcome", "nope"), "rejected_moderation")
    assert_one_line_refusal(cli("batch", "/no/such/file.jsonl"), "no such file")
    assert_one_line_refusal(cli("health", "trip", "ultra"), "unknown model 'ultra'")
    assert_one_line_refusal(cli("reconcile", "--invoice-timezone", "Mars/Base"), "Mars/Base")
    assert_one_line_refusal(cli("reconcile", "--no-provider"), "nothing to compare")


def test_rich_markup_in_input_is_printed_as_text() -> None:
    result = cli("generate", "[/red] [bold]x", "--image", "https://203.0.113.7/[/x]:oops")
    assert_one_line_refusal(result, "[/x]:oops")


# ---- the fuzz ----------------------------------------------------------------------------

NASTY = [
    "",
    "-",
    "--",
    "-5",
    "0",
    "100000",
    "1e9",
    "nan",
    "abc",
    "a/b",
    "../../etc/passwd",
    "[/red]",
    "[bold]x[/]",
    "x" * 300,
    "ünïcødé",
    "job-1",
    "mini",
    "720p",
    "16:9",
    "https://203.0.113.7/a.png",
    "https://203.0.113.7/a.png:first_frame",
    "https://203.0.113.7/a.png:fist_frame",
    "http://127.0.0.1/a.png",
    "2026-13-45",
    "2026-11-01",
    "/no/such/file.jsonl",
    "'; DROP TABLE x; --",
    "x' OR '1'='1",
    "\t",
]


def _flags(command: Any) -> list[str]:
    flags: list[str] = []
    for param in command.params:
        flags += [
            o for o in (*param.opts, *getattr(param, "secondary_opts", ())) if o.startswith("-")
        ]
    return [f for f in flags if f != "--help"] + ["--bogus", "-x"]


@st.composite
def argv(draw: st.DrawFn) -> list[str]:
    path, command = draw(st.sampled_from(COMMANDS))
    tokens = st.one_of(
        st.sampled_from(_flags(command)), st.sampled_from(NASTY), st.text(max_size=12)
    )
    return [*path, *draw(st.lists(tokens, max_size=6))]


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(args=argv())
def test_no_argument_makes_a_traceback(args: list[str]) -> None:
    result = cli(*args)
    assert "Traceback" not in result.out + result.err, (args, result.err)
    assert result.code != EXIT_BUG, (args, result.err)
    assert result.code in (0, 1, 2, 3, 4, 5), (args, result.code, result.err)
    for line in result.err_lines:
        assert line.startswith(DIAGNOSTIC_PREFIXES) or line.startswith(" "), (args, result.err)
    if result.code == EXIT_INVALID:
        assert result.err_lines and result.err_lines[0].startswith("error: "), (args, result.err)
