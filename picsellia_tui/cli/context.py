"""What every command shares: the root options, the settings they give, an engine
of this process's own, and the way to open the app (handed in by the entry point,
so that the command line never imports the Textual app itself)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from picsellia_tui.cli.errors import fail

if TYPE_CHECKING:
    from picsellia_tui.engine.config import Settings
    from picsellia_tui.engine.core import Engine

T = TypeVar("T")
OpenApp = Callable[["Settings | Callable[[], Settings]"], None]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print data as JSON.")]
STATE: dict[str, Any] = {"config": None, "overrides": {}, "open_app": None}
# Exit code of `--wait` for each final run status.
EXIT_FOR = {"succeeded": 0, "failed": 1, "killed": 3}


def settings() -> Settings:
    from picsellia_tui.engine.config import load_settings

    return load_settings(STATE["config"], **STATE["overrides"])


def with_engine(fn: Callable[[Engine], Awaitable[T]], supervise: bool = False) -> T:
    import anyio

    from picsellia_tui.engine.core import Engine

    async def main() -> T:
        async with Engine(settings(), supervise=supervise) as engine:
            return await fn(engine)

    return anyio.run(main)


def open_tui(s: Settings | Callable[[], Settings]) -> None:
    open_app: OpenApp | None = STATE["open_app"]
    if open_app is None:
        fail("the interface cannot start from here: run `picsellia-tui`")
    open_app(s)
