"""How the CLI writes: results on stdout, diagnostics on stderr, nothing cut short.

Results (a job ID, a record, a table, JSON) go to stdout, so `> file` and pipes get them
alone; notes, warnings, estimates, progress and errors go to stderr. When a stream is not a
terminal it is given room for any line (a job ID or a URI is never shortened with "..."), and
on a terminal table cells fold instead of being cut. Text from outside (an error message, a
prompt, a URL) is printed as text, never read as rich markup.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

WIDE = 4096
"""Columns given to a stream that is not a terminal: wider than any row we print."""


def _console(stderr: bool) -> Console:
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return Console(stderr=stderr, highlight=False)
    return Console(stderr=stderr, highlight=False, width=WIDE, soft_wrap=True)


class Output:
    def __init__(self) -> None:
        self.out = _console(stderr=False)
        self.err = _console(stderr=True)

    # ---- results (stdout) ------------------------------------------------------------------

    def result(self, text: str) -> None:
        self.out.print(escape(text), soft_wrap=True)

    def json(self, value: Any) -> None:
        self.out.file.write(json.dumps(value, indent=2, default=str) + "\n")
        self.out.file.flush()

    def table(self, table: Table) -> None:
        self.out.print(table)

    # ---- diagnostics (stderr) --------------------------------------------------------------

    def info(self, text: str) -> None:
        self.err.print(escape(text), soft_wrap=True)

    def warn(self, text: str) -> None:
        self.err.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True)

    def error(self, text: str) -> None:
        self.err.print(f"[red]error:[/] {escape(text)}", soft_wrap=True)


def table(*columns: str, title: str | None = None) -> Table:
    """A table whose cells fold (never end in an ellipsis)."""
    t = Table(title=title)
    for name in columns:
        t.add_column(name, overflow="fold")
    return t
