"""The suite cleans up after itself on the Docker host (tests/workspace_artifacts.py and
the two fixtures of tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from picsellia_tui.engine.workspace import Workspace
from tests.core.helpers import make_settings
from tests.workspace_artifacts import (
    WORKSPACE_LABEL,
    remove_workspace_artifacts,
    workspace_artifacts,
    workspace_ids_under,
)

pytestmark = [pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
BASE = "python:3.11-slim"


def _workspace_id(root: Path) -> str:
    root.mkdir()
    ws = Workspace(make_settings(root))
    try:
        return ws.workspace_id
    finally:
        ws.close()


def test_every_kind_of_artifact_of_a_workspace_found_and_removed(
    docker_client: Any, tmp_path: Path
) -> None:
    ws_id = _workspace_id(tmp_path / "ws")
    other = uuid.uuid4().hex  # another workspace (another test, another engineer)
    assert workspace_ids_under(tmp_path) == {ws_id}
    api = docker_client.api
    tag = uuid.uuid4().hex[:8]
    mine = {WORKSPACE_LABEL: ws_id}
    cid = api.create_container(BASE, ["true"], name=f"ptui-test-{tag}", labels=mine)["Id"]
    foreign = api.create_container(
        BASE, ["true"], name=f"ptui-test-{tag}-other", labels={WORKSPACE_LABEL: other}
    )["Id"]
    try:
        api.create_network(f"ptui-test-{tag}", labels=mine)
        api.create_volume(f"ptui-test-{tag}", labels=mine)
        ctx = tmp_path / "image"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(f"FROM {BASE}\n")
        docker_client.images.build(
            path=str(ctx), tag=f"ptui-test/{tag}:1", labels=mine, rm=True, forcerm=True
        )

        found = workspace_artifacts(docker_client, {ws_id})
        assert sorted(a.kind for a in found) == ["container", "image", "network", "volume"], found
        assert {a.workspace for a in found} == {ws_id}
        assert any(a.kind == "container" and a.ref == cid for a in found)

        assert remove_workspace_artifacts(docker_client, {ws_id}) == found
        assert workspace_artifacts(docker_client, {ws_id}) == []
        assert api.inspect_container(foreign)["Id"] == foreign  # not ours: untouched
        assert BASE in {t for i in docker_client.images.list() for t in i.tags}
    finally:
        api.remove_container(foreign, force=True)
        remove_workspace_artifacts(docker_client, {ws_id})


LEAKY_TEST = """
from pathlib import Path

import pytest

from picsellia_tui.engine.workspace import Workspace
from tests.conftest import (  # the suite's own fixtures
    docker_client,
    no_workspace_artifacts_left,
    workspace_artifacts_removed,
)
from tests.core.helpers import make_settings
from tests.workspace_artifacts import WORKSPACE_LABEL


@pytest.fixture(scope="session")
def engine_workspace(tmp_path_factory, docker_client):
    # A session fixture whose engine left a run's container behind.
    ws = Workspace(make_settings(tmp_path_factory.mktemp("leaky")))
    docker_client.api.create_container(
        "{base}", ["true"], name="{name}", labels={{WORKSPACE_LABEL: ws.workspace_id}}
    )
    ws.close()
    yield ws.workspace_id
    if {clean}:
        docker_client.api.remove_container("{name}", force=True)


def test_uses_the_workspace(engine_workspace):
    assert engine_workspace
"""


@pytest.mark.parametrize("clean", [False, True], ids=["leaves-a-container", "cleans-up"])
def test_session_fails_when_a_workspace_artifact_is_left(
    docker_client: Any, tmp_path: Path, clean: bool
) -> None:
    name = f"ptui-test-leak-{uuid.uuid4().hex[:8]}"
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_leak.py").write_text(
        textwrap.dedent(LEAKY_TEST).format(base=BASE, name=name, clean=clean)
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = out.stdout + out.stderr
    try:
        if clean:
            assert out.returncode == 0, text
            assert "left at its end" not in text
        else:
            assert out.returncode != 0, text
            assert "1 passed, 1 error" in text, text
            assert "1 Docker artifact(s) of this session's test workspaces were left" in text
            assert f"container {name}" in text
        # Either way nothing stays: the check removes what it reports.
        assert not docker_client.api.containers(all=True, filters={"name": name})
    finally:
        for c in docker_client.api.containers(all=True, filters={"name": name}):
            docker_client.api.remove_container(c["Id"], force=True)
