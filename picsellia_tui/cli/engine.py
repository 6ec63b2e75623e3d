"""`picsellia-tui engine serve`: the engine, headless."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from picsellia_tui.cli.context import settings

engine_app = typer.Typer(help="The engine, headless.", no_args_is_help=True)


@engine_app.command("serve")
def engine_serve(
    idle_exit: Annotated[
        bool,
        typer.Option(
            "--idle-exit",
            help="Leave once no run is active and no client connected for "
            "engine_idle_seconds (how the background engine runs).",
        ),
    ] = False,
) -> None:
    """Run the engine: schedule, supervise and reconcile runs, serve the app and
    the commands on the workspace's socket, until stopped (Ctrl-C, SIGTERM).
    Without it, the first command or app that needs an engine starts one in the
    background; see docs/engine.md for a systemd user unit."""
    import logging

    import anyio

    from picsellia_tui.engine.daemon import serve_engine

    def say(line: str) -> None:
        # The background engine's stderr is its log file already (engine.log, which
        # the engine's own handler writes too): one line there, not two.
        if idle_exit:
            logging.getLogger("picsellia_tui.engine").info(line)
        else:
            print(line, file=sys.stderr, flush=True)

    code = anyio.run(lambda: serve_engine(settings(), idle_exit=idle_exit, say=say))
    if code:
        raise typer.Exit(code)
