"""The state every command shares, without typer: the root options, the settings
they give and an engine of this process's own. The read commands' fast path
(cli/fast.py) uses it without importing the typer command line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from picsellia_tui.engine.config import Settings
    from picsellia_tui.engine.core import Engine

T = TypeVar("T")

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
