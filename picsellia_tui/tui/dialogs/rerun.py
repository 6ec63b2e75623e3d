"""The re-run confirmation: `y`/`enter` re-runs, `n`/`esc` cancels, `i` toggles
"same image" (the digest the previous run ran, for an exact reproduction, instead
of the processing's current image)."""

from __future__ import annotations

from typing import NamedTuple

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Static


class RerunChoice(NamedTuple):
    same_image: bool


class RerunDialog(ModalScreen[RerunChoice | None]):
    BINDINGS = [
        Binding("y", "rerun", "Re-run"),
        Binding("n,escape", "dismiss(None)", "Cancel"),
        Binding("i", "toggle_image", "Same image"),
        Binding("left,right", "app.focus_next", "Switch button", show=False),
    ]

    def __init__(self, title: str, message: str, pin: str | None) -> None:
        """`message` says what is re-run; `pin` what "same image" would run ("run #1,
        aa5e0123abcd"), None when no earlier run recorded a digest (the toggle is then
        disabled)."""
        super().__init__(classes="dialog")
        self.title_text = title
        self.message = message
        self.pin = pin

    def _what_runs(self, same_image: bool) -> str:
        if same_image and self.pin:
            return f"{self.message}\nIt runs the image of {self.pin} again (exact reproduction)."
        return f"{self.message}\nIt runs the processing's current definition and image."

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="dialog-box") as box:
            box.border_title = self.title_text
            yield Static(self._what_runs(False), id="confirm-message")
            label = (
                f"Same image as {self.pin} (i)"
                if self.pin
                else "Same image (i): no earlier run recorded a digest"
            )
            yield Checkbox(label, id="rerun-same-image", disabled=self.pin is None, compact=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Re-run (y)", id="confirm-yes", variant="primary", compact=True)
                yield Button("Cancel (n)", id="confirm-no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#confirm-yes", Button).focus()

    @on(Checkbox.Changed)
    def _toggled(self, event: Checkbox.Changed) -> None:
        self.query_one("#confirm-message", Static).update(self._what_runs(event.value))

    @property
    def same_image(self) -> bool:
        return self.query_one("#rerun-same-image", Checkbox).value

    def action_toggle_image(self) -> None:
        box = self.query_one("#rerun-same-image", Checkbox)
        if not box.disabled:
            box.toggle()

    def action_rerun(self) -> None:
        self.dismiss(RerunChoice(self.same_image))

    @on(Button.Pressed, "#confirm-yes")
    def _yes(self) -> None:
        self.action_rerun()

    @on(Button.Pressed, "#confirm-no")
    def _no(self) -> None:
        self.dismiss(None)
