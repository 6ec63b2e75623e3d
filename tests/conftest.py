"""Shared fixtures. Docker tests skip with a reason on a machine without a daemon,
and fail instead when PICSELLIA_REQUIRE_DOCKER=1 (CI)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

REQUIRE_DOCKER = os.environ.get("PICSELLIA_REQUIRE_DOCKER") == "1"


def _docker_problem() -> str | None:
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
        client.close()
    except Exception as exc:
        return f"no Docker daemon answers ({type(exc).__name__}: {exc})"
    return None


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    problem = _docker_problem()
    if problem:
        if REQUIRE_DOCKER:
            pytest.fail(f"PICSELLIA_REQUIRE_DOCKER=1 but {problem}")
        pytest.skip(f"{problem}; run ../shared/tools/docker-up to test against Docker")
    import docker

    client = docker.from_env(timeout=60)
    yield client
    client.close()
