"""What the launch dialog says a processing writes, when it asks for no version name.

A Picsellia-API processing (output_mode "none", `[picsellia] api = true`) creates
its versions itself through `create_version`: the dialog said "creates no model
version" for it, which was false."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from picsellia_tui.tui.app import PicselliaApp
from picsellia_tui.tui.dialogs.launch import LaunchDialog
from tests.picsellia_sdk import add_sdk_processing
from tests.tui.helpers import FIXTURES, make_settings, ready, screen_text, until, workspace

pytestmark = pytest.mark.anyio

API_NOTE = "output: the processing creates its versions through the Picsellia API"
NONE_NOTE = "output: creates no model version"


def _processings(root: Path) -> None:
    procs = make_settings(root).processings_dir
    add_sdk_processing(procs)
    # The same test processing, writing no version at all (no API either).
    shutil.copytree(FIXTURES / "proc_copy", procs / "test-none")
    toml = procs / "test-none" / "processing.toml"
    text = toml.read_text().replace('name = "test-copy"', 'name = "test-none"')
    toml.write_text(text.replace('output_mode = "new_model_version"', 'output_mode = "none"'))


def _form_drawn(app: PicselliaApp, dialog: LaunchDialog, name: str) -> bool:
    """The form on screen is that processing's (built in a worker after a move)."""
    text = screen_text(app)
    asks_name = bool(dialog.query("#version-name"))
    if name == "test-sdk":
        return "org_by" in text and not asks_name
    if name == "test-copy":
        return "org_by" not in text and asks_name
    return "org_by" not in text and not asks_name and "lines" in text


async def test_launch_dialog_says_an_api_processing_makes_its_own_versions(
    tmp_path: Path,
) -> None:
    _processings(tmp_path)
    with workspace(tmp_path) as handle:
        app = PicselliaApp(handle, frozen_time=True)
        async with app.run_test(size=(120, 36)) as pilot:
            await ready(pilot)
            await pilot.press("2")  # ModelVersions: launch on m/v1, pick the processing
            await until(pilot, lambda: app.screen.query("#versions-table"))
            await until(pilot, lambda: app.screen.query_one("#versions-table").row_count == 1)
            await pilot.press("l")
            await until(pilot, lambda: isinstance(app.screen, LaunchDialog))
            dialog = app.screen
            assert isinstance(dialog, LaunchDialog)
            seen: dict[str, str] = {}
            for _ in range(6):  # walk the picker over every compatible processing
                await until(pilot, lambda: dialog.proc is not None)
                name = dialog.proc.name if dialog.proc else ""
                await until(pilot, lambda n=name: _form_drawn(app, dialog, n))
                seen.setdefault(name, screen_text(app))
                if len(seen) == 3:
                    break
                await pilot.press("down")
            assert set(seen) == {"test-copy", "test-sdk", "test-none"}, list(seen)
            assert API_NOTE in seen["test-sdk"]
            assert "creates no model version" not in seen["test-sdk"]
            assert NONE_NOTE in seen["test-none"] and API_NOTE not in seen["test-none"]
            assert API_NOTE not in seen["test-copy"] and NONE_NOTE not in seen["test-copy"]
