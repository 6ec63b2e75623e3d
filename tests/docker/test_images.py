"""images: build over the API with readable lines, failing step reported, presence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from picsellia_tui.engine.executors.base import ExecutorError
from picsellia_tui.engine.hosts import HostConfig
from picsellia_tui.engine.images import build_image, image_present, immutable_ref

pytestmark = [pytest.mark.docker]


def test_image_present(docker_client: Any, echo_image: str) -> None:
    assert image_present(docker_client, echo_image)
    assert image_present(HostConfig(), "picsellia-tui-test/echo:0.1.0")
    assert not image_present(docker_client, "picsellia-tui-test/never-built:0")


@pytest.mark.slow
def test_build_lines_and_failing_step(docker_client: Any, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.11-slim\nRUN echo building-now\nRUN echo about-to-fail && exit 3\n"
    )
    lines: list[str] = []
    with pytest.raises(ExecutorError) as info:
        build_image(
            docker_client,
            tmp_path,
            "Dockerfile",
            "picsellia-tui-test/broken:0",
            lines.append,
            nocache=True,
        )
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(
        "build of picsellia-tui-test/broken:0 failed at Step 3/3 : RUN echo about-to-fail"
    )
    assert "returned a non-zero code: 3" in msg
    assert "building-now" in lines and "about-to-fail" in lines
    assert all("\n" not in ln for ln in lines)


@pytest.mark.slow
def test_build_with_dockerfile_elsewhere(docker_client: Any, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text("hi\n")
    df = tmp_path / "build" / "Custom.dockerfile"
    df.parent.mkdir()
    df.write_text("FROM python:3.11-slim\nCOPY hello.txt /hello.txt\n")
    lines: list[str] = []
    image_id = build_image(docker_client, ctx, df, "picsellia-tui-test/elsewhere:0", lines.append)
    assert image_id.startswith("sha256:")
    assert any(ln.startswith("Step 2/2 : COPY") for ln in lines)
    docker_client.images.remove("picsellia-tui-test/elsewhere:0", force=True)


def test_missing_dockerfile(docker_client: Any, tmp_path: Path) -> None:
    with pytest.raises(ExecutorError, match="not found"):
        build_image(docker_client, tmp_path, "Dockerfile", "x:0", print)


def test_immutable_ref() -> None:
    assert immutable_ref({"Id": "sha256:abc", "RepoDigests": []}) == "sha256:abc"
    attrs = {"Id": "sha256:abc", "RepoDigests": ["a/x@sha256:1", "reg.io/b/y@sha256:2"]}
    assert immutable_ref(attrs) == "a/x@sha256:1"
    assert immutable_ref(attrs, "reg.io/b/y:1.0") == "reg.io/b/y@sha256:2"
