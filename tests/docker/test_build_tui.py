"""`b` in the Processings tab builds a processing's image on the Docker host: the
build log streams into the log pane (the Jobs tab's widget), `esc` cancels the
build for real (the daemon stops it: its build container goes away and no image
is tagged), and the detail panel's image line turns present once it is built."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from picsellia_tui.tui.app import AppEngineHandle, PicselliaApp
from picsellia_tui.tui.dialogs.build import BuildDialog
from picsellia_tui.tui.screens.main import MainScreen
from picsellia_tui.tui.widgets.log_view import LogView
from picsellia_tui.tui.widgets.processings import ProcessingsPane, ProcessingsTable
from tests.tui.helpers import ready, screen_text, until, workspace

pytestmark = [pytest.mark.anyio, pytest.mark.docker, pytest.mark.slow]
SIZE = (120, 36)
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "proc_copy"


@pytest.fixture
def ws(tmp_path: Path, docker_client: Any) -> Iterator[AppEngineHandle]:
    with workspace(tmp_path, executor="docker") as handle:
        yield handle


@pytest.fixture
def image_tag(docker_client: Any) -> Iterator[str]:
    """A unique tag for this test's image; removed at the end."""
    tag = f"picsellia-tui-test/proctab-build-{uuid.uuid4().hex[:8]}:1"
    yield tag
    try:
        docker_client.images.remove(tag, force=True)
    except Exception:
        pass


def private_processing(ws: AppEngineHandle, root: Path, tag: str, run_step: str) -> str:
    folder = root / "mine"
    shutil.copytree(FIXTURE, folder)
    toml = folder / "processing.toml"
    toml.write_text(
        toml.read_text()
        .replace('name = "test-copy"', 'name = "mine"')
        .replace('image = "picsellia-tui/test-copy:1.0.0"', f'image = "{tag}"')
    )
    dockerfile = folder / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace("WORKDIR /app", f"{run_step}\nWORKDIR /app")
    )
    ws.call(lambda e: e.create_processing(folder))
    return "mine"


async def open_build(pilot: Any, name: str) -> BuildDialog:
    app = pilot.app
    screen = app.screen_stack[0]
    assert isinstance(screen, MainScreen)
    procs = screen.query_one(ProcessingsPane)
    await until(pilot, lambda: name in [p.name for p in procs.processings])
    procs.select(name)
    await until(pilot, lambda: procs.query_one(ProcessingsTable).cursor_key == name)
    await pilot.press("b")
    await until(pilot, lambda: isinstance(app.screen, BuildDialog))
    dialog = app.screen
    assert isinstance(dialog, BuildDialog)
    return dialog


def status(dialog: BuildDialog) -> str:
    return str(dialog.query_one("#build-status", Static).render())


def log_text(dialog: BuildDialog) -> str:
    return "\n".join(dialog.query_one(LogView).log_lines.visible_text())


async def test_build_streams_its_log_and_marks_the_image_present(
    ws: AppEngineHandle, tmp_path: Path, image_tag: str, docker_client: Any
) -> None:
    marker = f"proctab-build-{uuid.uuid4().hex[:6]}"
    name = private_processing(ws, tmp_path, image_tag, f"RUN echo {marker}")
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await until(pilot, lambda: "✗ missing" in screen_text(app))
        dialog = await open_build(pilot, name)
        await pilot.press("enter")
        await until(pilot, lambda: "✓ built" in status(dialog), timeout=180)
        await until(pilot, lambda: marker in log_text(dialog))
        log = dialog.query_one(LogView)
        assert log.reader is not None and len(log.reader) > 5
        text = "\n".join(r.text for r in log.reader.records(0))
        assert "Step 1/" in text and f"built {image_tag}" in text
        # The log pane's keys: search, then save.
        await pilot.press("slash", *marker, "enter")
        await until(pilot, lambda: log.log_lines.current_line is not None)
        assert marker in log.reader.record(log.log_lines.current_line or 0).text
        log.save_dir = tmp_path / "saved"
        await pilot.press("s")
        await until(
            pilot, lambda: (tmp_path / "saved").is_dir() and any((tmp_path / "saved").iterdir())
        )
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, BuildDialog))
        await until(pilot, lambda: "✓ present on the host" in screen_text(app))
    assert docker_client.images.get(image_tag) is not None


async def test_escape_cancels_the_build_on_the_daemon(
    ws: AppEngineHandle, tmp_path: Path, image_tag: str, docker_client: Any
) -> None:
    step = f"sleep 93.{uuid.uuid4().int % 1000:03d}"
    name = private_processing(ws, tmp_path, image_tag, f"RUN echo slow-step && {step}")

    def build_containers() -> list[Any]:
        return [
            c
            for c in docker_client.containers.list(all=True)
            if step in " ".join(c.attrs.get("Config", {}).get("Cmd") or [])
        ]

    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        dialog = await open_build(pilot, name)
        await pilot.press("enter")
        await until(pilot, lambda: "slow-step" in log_text(dialog), timeout=120)
        await until(pilot, lambda: build_containers(), timeout=30)
        await pilot.press("escape")
        await until(pilot, lambda: "build cancelled" in status(dialog), timeout=60)
        assert isinstance(app.screen, BuildDialog)  # it stays to say how it ended
        await until(pilot, lambda: "build cancelled" in log_text(dialog))
        # Really stopped: the daemon removed the step's container, tagged nothing.
        await until(pilot, lambda: not build_containers(), timeout=30)
        import docker.errors

        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(image_tag)
        build = dialog.build
        assert build is not None and build.status == "cancelled"
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, BuildDialog))
        assert "✗ missing" in screen_text(app)
