"""The reliability suite's shared fixtures and its closing table.

Every test reports what it did to a session-wide `Tally` (faults injected, runs those
faults hit, runs that still ended truthfully, log lines lost, bad inputs tried and
refused cleanly). `pytest_terminal_summary` prints it as one table at the end of the
run and writes it as JSON to `.pytest_cache/reliability-report.json` (or
`$PICSELLIA_RELIABILITY_REPORT`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The sshd (ssh://root@127.0.0.1:PORT) and TLS proxy fixtures of the Docker tests.
from tests.docker.conftest import ssh_path, sshd_host, tls_proxy  # noqa: F401
from tests.reliability.helpers import PROBE_DIR, PROBE_IMAGE, Tally

TALLY = pytest.StashKey[Tally]()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TALLY] = Tally()


@pytest.fixture(scope="session")
def tally(request: pytest.FixtureRequest) -> Tally:
    return request.config.stash[TALLY]


@pytest.fixture(scope="session")
def probe_image(docker_client: Any) -> str:
    """The rel-probe image, built from tests/fixtures/reliability_probe (cached)."""
    docker_client.images.build(path=str(PROBE_DIR), tag=PROBE_IMAGE, rm=True)
    return PROBE_IMAGE


@pytest.fixture
def workspace_containers(docker_client: Any) -> Iterator[list[str]]:
    """Workspace ids whose containers are removed after the test (append to it)."""
    ids: list[str] = []
    yield ids
    for ws in ids:
        for c in docker_client.containers.list(
            all=True, filters={"label": f"picsellia-tui.workspace={ws}"}
        ):
            try:
                c.remove(force=True, v=True)
            except Exception:
                pass


def _report_path(config: pytest.Config) -> Path:
    env = os.environ.get("PICSELLIA_RELIABILITY_REPORT")
    if env:
        return Path(env)
    return Path(str(config.rootpath)) / ".pytest_cache" / "reliability-report.json"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    tally = config.stash.get(TALLY, None)
    if tally is None or not tally.rows:
        return
    lines = tally.table()
    tr = terminalreporter
    tr.section("reliability")
    for line in lines:
        tr.write_line(line)
    path = _report_path(config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(tally.as_json(), indent=2) + "\n")
        tr.write_line(f"(also written to {path})")
    except OSError as exc:
        tr.write_line(f"(could not write {path}: {exc})")
