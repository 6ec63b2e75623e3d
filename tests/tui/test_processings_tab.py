"""The Processings tab manages private processings, keys only: `n` new (from the
template, a folder or an image), `u` update from the folder, `d` remove, with the
engine's refusals shown word for word as the command line prints them; public
processings are read-only; a processing created by another process shows up
without ctrl+r. (`b`, which needs Docker, is in tests/docker/test_build_tui.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, TypeVar

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input, Static

from picsellia_tui.tui.app import AppEngineHandle, PicselliaApp
from picsellia_tui.tui.dialogs.confirm import ConfirmDialog
from picsellia_tui.tui.dialogs.new_processing import NewProcessingDialog
from picsellia_tui.tui.dialogs.update_processing import UpdateProcessingDialog
from picsellia_tui.tui.screens.main import MainScreen
from picsellia_tui.tui.widgets.processings import ProcessingsPane, ProcessingsTable
from tests.tui.helpers import ready, screen_text, until, wait_for

pytestmark = pytest.mark.anyio
SIZE = (120, 36)
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "processings" / "_template"
EXE = Path(sys.executable).parent / "picsellia-tui"
D = TypeVar("D", bound=Screen[Any])


def pane(app: PicselliaApp) -> ProcessingsPane:
    screen = app.screen_stack[0]
    assert isinstance(screen, MainScreen)
    return screen.query_one(ProcessingsPane)


def names(app: PicselliaApp) -> list[str]:
    return [p.name for p in pane(app).processings]


def selected(app: PicselliaApp) -> str | None:
    return pane(app).query_one(ProcessingsTable).cursor_key


def error_text(dialog: Any, selector: str) -> str:
    widget = dialog.query_one(selector, Static)
    return str(widget.render()).removeprefix("✗ ")


def notified(app: PicselliaApp, text: str) -> bool:
    return any(text in n.message for n in app._notifications)


async def select(pilot: Pilot[Any], name: str) -> None:
    await until(pilot, lambda: name in names(pilot.app))
    pane(pilot.app).select(name)
    await until(pilot, lambda: selected(pilot.app) == name)


async def open_dialog(pilot: Pilot[Any], key: str, kind: type[D]) -> D:
    """Press `key` and return the dialog it opens."""
    await pilot.press(key)
    await until(pilot, lambda: isinstance(pilot.app.screen, kind))
    dialog = pilot.app.screen
    assert isinstance(dialog, kind)
    return dialog


async def closed(pilot: Pilot[Any], kind: type[Screen[Any]]) -> None:
    await until(pilot, lambda: not isinstance(pilot.app.screen, kind))


def own_copy(tmp_path: Path, name: str) -> Path:
    """The test-copy fixture as the folder of a private processing `name` (with an
    image name of its own)."""
    folder = tmp_path / name
    shutil.copytree(ROOT / "tests" / "fixtures" / "proc_copy", folder)
    toml = folder / "processing.toml"
    toml.write_text(
        toml.read_text()
        .replace('name = "test-copy"', f'name = "{name}"')
        .replace('"picsellia-tui/test-copy:', f'"example/{name}:')
    )
    return folder


def with_template(ws: AppEngineHandle) -> None:
    shutil.copytree(TEMPLATE, ws.settings.processings_dir / "_template")


def cli(ws: AppEngineHandle, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """The command line on the same workspace."""
    s = ws.settings
    env = dict(os.environ)
    env.pop("PICSELLIA_TUI_CONFIG", None)
    env.update(
        PICSELLIA_TUI_DATA_DIR=str(s.data_dir),
        PICSELLIA_TUI_EXECUTOR="process",
        PICSELLIA_TUI_PROCESSINGS_DIR=str(s.processings_dir),
        PICSELLIA_TUI_USER=s.user,
        PICSELLIA_TUI_ORGANIZATION=s.organization,
    )
    return subprocess.run(
        [str(EXE), *map(str, args)], capture_output=True, text=True, timeout=120, env=env
    )


async def test_new_from_the_template_then_the_same_name_refused(
    ws: AppEngineHandle, tmp_path: Path
) -> None:
    with_template(ws)
    dest = tmp_path / "work"
    dest.mkdir()
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        dialog = await open_dialog(pilot, "n", NewProcessingDialog)
        await pilot.press("right", "tab", *"my-proc", "tab", "ctrl+u", *str(dest), "enter")
        await closed(pilot, NewProcessingDialog)
        await until(pilot, lambda: selected(app) == "my-proc")
        assert (dest / "my-proc" / "processing.toml").is_file()
        p = ws.call(lambda e: e.processing("my-proc"))
        assert p.visibility == "private" and p.source_dir == str(dest / "my-proc")
        await until(pilot, lambda: "my-proc 0.1.0  private" in screen_text(app))

        # The same name again: the engine's line under the name field; nothing written.
        dialog = await open_dialog(pilot, "n", NewProcessingDialog)
        await pilot.press("right", "tab", *"my-proc", "tab", "ctrl+u", *str(dest / "x"), "enter")
        await until(pilot, lambda: error_text(dialog, "#err-new-template-name"))
        assert error_text(dialog, "#err-new-template-name") == (
            "'my-proc' is already a processing's name; pick another name"
        )
        assert dialog.focused is dialog.query_one("#new-template-name")
        assert not (dest / "x").exists()
        await pilot.press("escape")
        await closed(pilot, NewProcessingDialog)


async def test_new_from_a_folder_reports_what_the_command_line_reports(
    ws: AppEngineHandle, tmp_path: Path
) -> None:
    broken = own_copy(tmp_path, "mine")
    toml = broken / "processing.toml"
    toml.write_text(toml.read_text().replace('type = "float"', 'type = "decimal"'))
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        dialog = await open_dialog(pilot, "n", NewProcessingDialog)
        assert isinstance(dialog, NewProcessingDialog) and dialog.mode == "folder"
        await pilot.press("tab", *str(broken), "enter")
        await until(pilot, lambda: error_text(dialog, "#err-new-folder"))
        shown = error_text(dialog, "#err-new-folder")
        p = cli(ws, "processings", "create", broken)
        assert p.returncode == 2
        assert p.stderr.strip() == f"error: {shown}"  # word for word
        assert shown.startswith(f"{toml}: parameters[sleep].type: ")
        # Fixed on disk, the same dialog creates it.
        toml.write_text(toml.read_text().replace('type = "decimal"', 'type = "float"'))
        await pilot.press("enter")
        await closed(pilot, NewProcessingDialog)
        await until(pilot, lambda: selected(app) == "mine")


async def test_new_from_an_image(ws: AppEngineHandle) -> None:
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        dialog = await open_dialog(pilot, "n", NewProcessingDialog)
        dialog.query_one("#new-image-command", Input).value = "python /app/run.py --fast"
        await pilot.press("right", "right", "tab", *"from-image", "tab", *"bad image", "enter")
        await until(pilot, lambda: error_text(dialog, "#err-new-image-ref"))
        assert error_text(dialog, "#err-new-image-ref") == (
            "processing from an image: image: 'bad image' is not a Docker image reference"
        )
        assert dialog.focused is dialog.query_one("#new-image-ref")
        await pilot.press("ctrl+u", *"example/convert:2")
        frameworks = dialog.query_one("#new-image-frameworks", Input)
        frameworks.value = "ONNX, openvino"
        await pilot.press("ctrl+s")
        await closed(pilot, NewProcessingDialog)
        await until(pilot, lambda: selected(app) == "from-image")
        p = ws.call(lambda e: e.processing("from-image"))
        assert p.image == "example/convert:2" and p.source_dir is None
        assert p.command == ["python", "/app/run.py", "--fast"]
        assert p.constraints.frameworks == ["onnx", "openvino"]
        assert p.task == "MODEL_CONVERSION" and p.target_type == "model_version"
        # Nothing to update or build from: no folder.
        dialog = await open_dialog(pilot, "u", UpdateProcessingDialog)
        await until(pilot, lambda: error_text(dialog, "#update-error"))
        assert "registered from an image: it has no folder" in error_text(dialog, "#update-error")
        await pilot.press("escape")
        await pilot.press("b")
        await until(pilot, lambda: notified(app, "registered from an image: there is no folder"))


async def test_update_shows_the_changes_before_saving(ws: AppEngineHandle, tmp_path: Path) -> None:
    with_template(ws)
    p = ws.call(lambda e: e.create_processing(template="my-proc", dest=tmp_path))
    toml = Path(p.source_dir or "") / "processing.toml"
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "my-proc")
        await open_dialog(pilot, "u", UpdateProcessingDialog)
        await until(pilot, lambda: "Nothing to update" in screen_text(app))
        await pilot.press("escape")
        text = toml.read_text()
        toml.write_text(
            text.replace('version = "0.1.0"', 'version = "0.2.0"')
            .replace("my-proc:0.1.0", "my-proc:0.2.0")
            .replace('default = "processed"', 'default = "fixed"')
            .replace('memory = "1g"', 'memory = "2g"')
        )
        await open_dialog(pilot, "u", UpdateProcessingDialog)
        await until(pilot, lambda: "Save 4 changes" in screen_text(app))
        shown = screen_text(app)
        for line in (
            ("version", "0.1.0", "0.2.0"),
            ("image", "picsellia-tui/my-proc:0.1.0", "picsellia-tui/my-proc:0.2.0"),
            ("parameters.tag", "str = processed", "str = fixed"),
            ("constraints.memory", "1g", "2g"),
        ):
            assert any(all(part in row for part in line) for row in shown.splitlines()), line
        assert ws.call(lambda e: e.processing("my-proc")).version == "0.1.0"  # not yet
        await pilot.press("enter")
        await closed(pilot, UpdateProcessingDialog)
        saved = ws.call(lambda e: e.processing("my-proc"))
        assert saved.version == "0.2.0" and saved.constraints.memory == "2g"
        await until(pilot, lambda: "my-proc 0.2.0  private" in screen_text(app))

        # Broken on disk: the engine's line, and nothing to save.
        toml.write_text(toml.read_text().replace('task = "MODEL_CONVERSION"', 'task = "NOPE"'))
        dialog = await open_dialog(pilot, "u", UpdateProcessingDialog)
        await until(pilot, lambda: error_text(dialog, "#update-error"))
        assert error_text(dialog, "#update-error").startswith(f"{toml}: task: ")
        await pilot.press("enter")  # nothing happens: there is nothing to save
        await pilot.press("escape")
        await closed(pilot, UpdateProcessingDialog)
        assert ws.call(lambda e: e.processing("my-proc")).version == "0.2.0"


async def test_public_processings_are_read_only(ws: AppEngineHandle) -> None:
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "test-copy")
        for key, what in (("u", "updated"), ("d", "removed")):
            await pilot.press(key)
            line = (
                f"test-copy is a public processing (bundled with the app, read-only): "
                f"it cannot be {what}"
            )
            await until(pilot, lambda line=line: notified(app, line))
            assert isinstance(app.screen, MainScreen)


async def test_remove_refused_while_a_run_is_active_then_done(
    ws: AppEngineHandle, tmp_path: Path
) -> None:
    mine = own_copy(tmp_path, "mine")
    ws.call(lambda e: e.create_processing(mine))
    job = ws.call(lambda e: e.launch("mine", "m/v1", {"sleep": 60}))
    wait_for(lambda: ws.call(lambda e: e.job(job.id)).status == "running", timeout=30)
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "mine")
        await open_dialog(pilot, "d", ConfirmDialog)
        await pilot.press("y")
        refusal = (
            "mine has an active run (pending or running): cancel it or let it end, "
            "then remove the processing"
        )
        await until(pilot, lambda: notified(app, refusal))
        assert "mine" in names(app)
        ws.call(lambda e: e.cancel(job.id))
        wait_for(lambda: ws.call(lambda e: e.job(job.id)).status == "killed", timeout=30)
        await open_dialog(pilot, "d", ConfirmDialog)
        await pilot.press("n")  # changed their mind: nothing removed
        await pilot.pause(0.3)
        assert "mine" in names(app)
        await open_dialog(pilot, "d", ConfirmDialog)
        await pilot.press("y")
        await until(pilot, lambda: "mine" not in names(app))
        # Its job and history stay readable in the Jobs tab.
        await pilot.press("3")
        await until(pilot, lambda: f"{job.id}" in screen_text(app) and "mine" in screen_text(app))
        assert ws.call(lambda e: e.job(job.id)).processing == "mine"


async def test_processings_from_another_process_appear_without_reload(
    ws: AppEngineHandle,
) -> None:
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        p = cli(
            ws,
            "processings",
            "create",
            "--image",
            "example/other:1",
            "--name",
            "other-img",
            "--command",
            "python run.py",
        )
        assert p.returncode == 0, p.stderr
        await until(pilot, lambda: "other-img" in names(app))
        assert "other-img" in screen_text(app)
