"""The one-line header: organization, user, executor host, live run counts
("starting engine…" until the engine is up)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from picsellia_tui.tui.widgets.format import STATUS_STYLE, STATUS_SYMBOL

if TYPE_CHECKING:
    from picsellia_tui.engine.views import EngineStats


class StatusHeader(Horizontal):
    def __init__(self, *, starting: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        # Until the engine is up (the app starts it after its first frame).
        self.starting = starting

    def compose(self) -> ComposeResult:
        yield Static(Text("picsellia-tui", style="bold"), id="header-title")
        yield Static("", id="header-workspace")
        yield Static(
            Text("starting engine…", style="dim italic") if self.starting else "",
            id="header-counts",
        )

    def show(self, stats: EngineStats) -> None:
        where = f"{stats.executor} @ {stats.host}"
        ws = Text.assemble(
            ("org ", "dim"),
            (stats.organization, "bold"),
            ("  user ", "dim"),
            (stats.user, "bold"),
            ("  ", ""),
            (where, ""),
        )
        self.query_one("#header-workspace", Static).update(ws)
        counts = Text.assemble(
            (
                f"{STATUS_SYMBOL['running']} {stats.running} running",
                STATUS_STYLE["running"] if stats.running else "dim",
            ),
            ("  ", ""),
            (
                f"{STATUS_SYMBOL['pending']} {stats.pending} pending",
                STATUS_STYLE["pending"] if stats.pending else "dim",
            ),
        )
        self.query_one("#header-counts", Static).update(counts)
