from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from picsellia_tui.tui.app import AppEngineHandle
from tests.tui.helpers import workspace


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[AppEngineHandle]:
    """A workspace with a test processing and a version, its engine started."""
    with workspace(tmp_path) as handle:
        yield handle
