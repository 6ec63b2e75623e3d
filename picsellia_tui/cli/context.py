"""What every command shares: the root options, the settings they give, an engine
of this process's own (all three in cli/state.py, which the fast path uses
without typer), the `--json` option, and the way to open the app (handed in by
the entry point, so that the command line never imports the Textual app itself)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from picsellia_tui.cli.errors import fail
from picsellia_tui.cli.state import EXIT_FOR, STATE, settings, with_engine

if TYPE_CHECKING:
    from picsellia_tui.engine.config import Settings

__all__ = ["EXIT_FOR", "STATE", "JsonOpt", "OpenApp", "open_tui", "settings", "with_engine"]

OpenApp = Callable[["Settings | Callable[[], Settings]"], None]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print data as JSON.")]


def open_tui(s: Settings | Callable[[], Settings]) -> None:
    open_app: OpenApp | None = STATE["open_app"]
    if open_app is None:
        fail("the interface cannot start from here: run `picsellia-tui`")
    open_app(s)
