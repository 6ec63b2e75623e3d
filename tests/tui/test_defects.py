"""Regressions of TUI defects seen while using the app (issue 11, item 4). Each
test failed before its fix. The lost tab key at start-up is covered by
tests/tui/test_events.py::test_app_paints_then_starts_its_engine."""

from __future__ import annotations

from typing import Any

import pytest
from textual import events
from textual.widgets import Input, OptionList, TabbedContent

from picsellia_tui.tui.app import AppEngineHandle, PicselliaApp
from picsellia_tui.tui.dialogs.launch import LaunchDialog
from picsellia_tui.tui.messages import LaunchRequest
from picsellia_tui.tui.screens.main import MainScreen
from picsellia_tui.tui.widgets.jobs import JobsPane
from picsellia_tui.tui.widgets.log_view import LogView
from tests.tui.helpers import ready, screen_text, until, wait_for

pytestmark = pytest.mark.anyio


def main(app: PicselliaApp) -> MainScreen:
    screen = app.screen_stack[0]
    assert isinstance(screen, MainScreen)
    return screen


def long_named_processing(handle: AppEngineHandle) -> None:
    """A private processing whose parameter names are as long as model-converter's."""
    handle.call(
        lambda e: e.create_processing(
            definition={
                "name": "long-labels",
                "image": "example/long-labels:1",
                "task": "MODEL_CONVERSION",
                "command": ["python", "main.py"],
                "parameters": [
                    {"name": "export_format", "type": "choice", "choices": ["onnx", "ort"]},
                    {"name": "input_model_file_name", "type": "str", "help": "the file"},
                ],
            }
        )
    )


async def test_zoomed_log_goes_away_when_another_tab_is_shown(ws: AppEngineHandle) -> None:
    job = ws.call(lambda e: e.launch("test-copy", "m/v1", {"lines": 5}))
    wait_for(lambda: ws.call(lambda e: e.job(job.id)).status == "succeeded", timeout=30)
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("3")
        log = main(app).query_one(JobsPane).query_one(LogView)
        await until(pilot, lambda: "done" in "\n".join(log.log_lines.visible_text()))
        await pilot.press("z")
        assert main(app).maximized is log
        for key, tab, shown in (("1", "processings", "test-copy"), ("2", "versions", "m")):
            await pilot.press(key)
            await pilot.pause(0.1)
            assert main(app).query_one(TabbedContent).active == tab
            assert main(app).maximized is None
            assert "starting job" not in screen_text(app)  # the log is not drawn over it
            assert shown in screen_text(app)
        await pilot.press("3")
        await until(pilot, lambda: "done" in screen_text(app))


async def test_launch_form_labels_are_never_cut_at_120_columns(ws: AppEngineHandle) -> None:
    long_named_processing(ws)
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        proc = ws.call(lambda e: e.processing("long-labels"))
        version = ws.call(lambda e: e.version("m/v1"))
        app.push_screen(LaunchDialog(LaunchRequest(proc, version)))
        await until(pilot, lambda: app.screen.query("#param-input_model_file_name"))
        await pilot.pause(0.2)
        lines = screen_text(app).splitlines()
        assert any("input_model_file_name" in line for line in lines), "\n".join(lines)
        assert any("export_format" in line for line in lines)


async def test_processing_picker_shows_public_and_private(ws: AppEngineHandle) -> None:
    long_named_processing(ws)
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        app.push_screen(LaunchDialog(LaunchRequest(version=ws.call(lambda e: e.version("m/v1")))))
        dialog = app.screen
        await until(pilot, lambda: dialog.query_one("#launch-pick", OptionList).option_count >= 2)

        def option(name: str) -> str:
            picker = dialog.query_one("#launch-pick", OptionList)
            for i in range(picker.option_count):
                prompt: Any = picker.get_option_at_index(i).prompt
                text = str(getattr(prompt, "plain", prompt))
                if name in text:
                    return text
            raise AssertionError(f"{name} not offered")

        assert option("test-copy").startswith("public")
        assert option("long-labels").startswith("private")


async def _picker_on(pilot: Any, dialog: LaunchDialog, name: str) -> None:
    """Move the picker (keys, waiting for each form) until `name`'s form is shown."""
    picker = dialog.query_one("#launch-pick", OptionList)
    await until(pilot, lambda: picker.option_count >= 2 and dialog.query(".field-input"))
    for _ in range(picker.option_count):
        if dialog.proc is not None and dialog.proc.name == name:
            break
        await pilot.press("down")
        await until(pilot, lambda: dialog.proc is not None and dialog._form_for == dialog.proc.name)
    assert dialog.proc is not None and dialog.proc.name == name
    await until(pilot, lambda: dialog.query("#param-sleep"))


def _burst(app: PicselliaApp, *keys: str) -> None:
    """Keys queued at once, as a terminal delivers them to a busy app: none is routed
    before the one before it has been handled by its widget."""
    driver = app._driver
    assert driver is not None
    for key in keys:
        event = events.Key(key, key if len(key) == 1 else None)
        event.set_sender(app)
        driver.send_message(event)


async def test_keys_typed_right_after_enter_reach_the_form(ws: AppEngineHandle) -> None:
    """In tmux under load, `enter` on the picker then `tab`, `ctrl+u`, `6` put the
    digit nowhere: the focus moved into the form only after the picker had handled
    `enter`, so the next keys went to the picker."""
    long_named_processing(ws)
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        app.push_screen(LaunchDialog(LaunchRequest(version=ws.call(lambda e: e.version("m/v1")))))
        dialog = app.screen
        assert isinstance(dialog, LaunchDialog)
        await until(pilot, lambda: dialog.query("#launch-pick"))
        await _picker_on(pilot, dialog, "test-copy")
        # (A field selects its text when focused: `7` replaces it. No `ctrl+u` in the
        # burst: a widget's own bindings run after the key has bubbled up to the app,
        # so Textual itself may apply a character typed just after it first.)
        _burst(app, "enter", "tab", "7")
        await until(pilot, lambda: dialog.query_one("#param-sleep", Input).value == "7")
        assert dialog.focused is dialog.query_one("#param-sleep")
        assert dialog.query_one("#param-lines", Input).value == "3"
