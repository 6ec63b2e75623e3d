"""`?`: every key of the app, by view (built from the views' BINDINGS)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from picsellia_tui.tui.keymap import help_rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss_help", "Close"),
    ]

    def __init__(self) -> None:
        super().__init__(classes="dialog")

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box", classes="dialog-box") as box:
            box.border_title = "Keys"
            box.border_subtitle = "esc closes · ctrl+p: every action by name"
            yield Static(render_help(), id="help-text")

    def on_mount(self) -> None:
        self.query_one("#help-box").focus()

    def action_dismiss_help(self) -> None:
        self.dismiss(None)


def render_help() -> Group:
    parts: list[RenderableType] = []
    for title, rows in help_rows():
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", min_width=14, no_wrap=True)
        grid.add_column()
        for key, desc in rows:
            grid.add_row(key, desc)
        parts.append(Text(title, style="bold underline"))
        parts.append(grid)
        parts.append(Text(""))
    return Group(*parts)
