"""Activity fixtures: the emulator over HTTP (its default key), for activities that call the
provider with a route's key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from seedance_pipeline.emulator.testing import EmulatorHandle, running_emulator


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    with running_emulator(
        data_dir=tmp_path_factory.mktemp("emulator"),
        queue_seconds=0.05,
        run_seconds=0.1,
        prewarm_media=False,
    ) as handle:
        yield handle
