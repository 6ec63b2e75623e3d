"""Notices (toasts) go away even when a toast's own timer does not remove it.

Seen under CPU load in tests/e2e/test_tmux_fix_and_rerun.py: four notices raised
within ~3 s while modal dialogs were pushed and popped stayed drawn for minutes,
the app idle. The Textual path that loses a toast's timer was not pinned down, so
this test takes that timer away on purpose and checks the app's own sweep
(picsellia_tui/tui/toasts.py) removes the toast, across a modal push and pop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual.screen import ModalScreen
from textual.widgets import Label
from textual.widgets._toast import Toast, ToastRack

from picsellia_tui.tui.app import AppEngineHandle
from tests.tui.helpers import make_app, ready, screen_text, until

pytestmark = pytest.mark.anyio
SIZE = (120, 36)


class Modal(ModalScreen[None]):
    def compose(self) -> Any:
        yield Label("a modal")


def drawn_toasts(app: Any) -> list[str]:
    rack = app.screen.get_child_by_type(ToastRack)
    return [str(t._notification.message) for t in rack.query(Toast)]


async def test_a_toast_whose_own_timer_is_lost_is_still_removed(
    ws: AppEngineHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The toasts' own removal never runs (what was seen under load).
    monkeypatch.setattr(Toast, "_on_mount", lambda self, event: None)
    app = make_app(ws)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot)
        app.notify("first notice", timeout=0.5)
        app.push_screen(Modal())
        app.notify("second notice", timeout=0.5)
        await pilot.pause(0.2)
        app.pop_screen()
        app.notify("third notice", timeout=0.5)
        await until(pilot, lambda: "third notice" in drawn_toasts(app), timeout=5)
        assert "third notice" in screen_text(app)
        # Past every notice's timeout (and the sweep's grace): none is left drawn.
        await asyncio.sleep(1.5)
        await until(pilot, lambda: not drawn_toasts(app), timeout=5)
        assert "notice" not in screen_text(app)
