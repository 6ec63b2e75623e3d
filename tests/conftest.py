"""Shared fixtures. Docker tests skip with a reason on a machine without a daemon,
and fail instead when PICSELLIA_REQUIRE_DOCKER=1 (CI).

Every test's workspaces leave nothing on the Docker host: after each test, the
containers, networks, images and volumes labelled with a workspace under its
`tmp_path` are removed (an engine may stop before the containers of its runs are
gone: kept failed containers, killed engines, engines in subprocesses). At the end of
the session, anything still labelled with one of the session's workspaces fails the
suite (and is removed): see tests/workspace_artifacts.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.workspace_artifacts import remove_workspace_artifacts, workspace_ids_under

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


_cleanup: list[Any] = []  # [client] once a daemon answered, [None] when none does


def _cleanup_client() -> Any | None:
    if not _cleanup:
        client: Any = None
        try:
            import docker

            client = docker.from_env(timeout=60)
            client.ping()
        except Exception:
            client = None
        _cleanup.append(client)
    return _cleanup[0]


@pytest.fixture(autouse=True)
def workspace_artifacts_removed(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the test (and its engines) ended: remove what its workspaces left on Docker."""
    yield
    tmp = getattr(request.node, "funcargs", {}).get("tmp_path")
    if tmp is None:
        return
    ids = workspace_ids_under(tmp)
    client = _cleanup_client() if ids else None
    if client is not None:
        remove_workspace_artifacts(client, ids)


@pytest.fixture(scope="session", autouse=True)
def no_workspace_artifacts_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """At the end of the session: nothing labelled with any of its workspaces is left."""
    yield
    ids = workspace_ids_under(tmp_path_factory.getbasetemp())
    client = _cleanup_client() if ids else None
    if client is None:
        return
    left = remove_workspace_artifacts(client, ids)
    if left:
        pytest.fail(
            f"{len(left)} Docker artifact(s) of this session's test workspaces were left "
            "at its end (removed now; a fixture that starts an engine must remove them): "
            + "; ".join(map(str, left)),
            pytrace=False,
        )
