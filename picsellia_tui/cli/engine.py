"""`picsellia-tui engine serve`: the engine, headless."""

from __future__ import annotations

import sys

import typer

from picsellia_tui.cli.context import settings

engine_app = typer.Typer(help="The engine, headless.", no_args_is_help=True)


@engine_app.command("serve")
def engine_serve() -> None:
    """Run the engine headless: schedule, supervise and reconcile runs until stopped."""
    import signal

    import anyio

    from picsellia_tui.engine.control import serve_control
    from picsellia_tui.engine.core import Engine

    async def main() -> None:
        async with Engine(settings(), supervise=True) as e, anyio.create_task_group() as tg:
            sock = await tg.start(serve_control, e)
            st = await e.stats()
            print(
                f"engine {e.engine_id} serving {e.settings.database_path} "
                f"({st.running} running, {st.pending} pending"
                f"{f'; commands hand it their launches through {sock}' if sock else ''}); "
                "Ctrl-C stops it (containers keep running)",
                file=sys.stderr,
                flush=True,
            )
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    print(
                        "engine stopping; runs keep going and are adopted at next start",
                        file=sys.stderr,
                    )
                    tg.cancel_scope.cancel()
                    return

    anyio.run(main)
