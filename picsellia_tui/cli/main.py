"""The command line: the same engine as the TUI, scriptable.

Module-level imports stay light (no Textual, docker or SQLAlchemy) so `--help`
and `--version` start fast; each command imports what it needs. The app itself is
opened through the `open_app` the entry point hands to `main`: the command line
never imports Textual.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from picsellia_tui import __version__
from picsellia_tui.cli import launch as _launch
from picsellia_tui.cli.context import STATE, JsonOpt, OpenApp, open_tui, settings
from picsellia_tui.cli.engine import engine_app
from picsellia_tui.cli.errors import reported
from picsellia_tui.cli.jobs import jobs_app
from picsellia_tui.cli.models import models_app
from picsellia_tui.cli.processings import processings_app

app = typer.Typer(
    name="picsellia-tui",
    help="Run Picsellia Processings on your ModelVersions, in Docker, from the terminal.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(processings_app, name="processings")
app.add_typer(models_app, name="models")
app.add_typer(jobs_app, name="jobs")
app.add_typer(engine_app, name="engine")
app.command("launch")(_launch.launch)


def _version_cb(value: bool) -> None:
    if value:
        print(f"picsellia-tui {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Config file (else $PICSELLIA_TUI_CONFIG, else the user config dir)."
        ),
    ] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Workspace folder.")] = None,
    executor: Annotated[
        str | None, typer.Option("--executor", help="docker or process (overrides config).")
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_cb, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    STATE["config"] = config
    if data_dir is not None:
        STATE["overrides"]["data_dir"] = data_dir
    if executor is not None:
        STATE["overrides"]["executor"] = executor
    if ctx.invoked_subcommand is None:
        open_tui(settings)


@app.command("doctor")
def doctor(as_json: JsonOpt = False) -> None:
    """Check configuration, database, Docker hosts and processing images."""
    from picsellia_tui.cli.doctor import run_doctor

    ok = run_doctor(settings(), as_json=as_json)
    if not ok:
        raise typer.Exit(1)


@app.command("demo")
def demo(
    open_app: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the app afterwards.")
    ] = True,
    build: Annotated[
        bool, typer.Option("--build/--no-build", help="Build missing processing images.")
    ] = True,
) -> None:
    """Create (or refresh) the demo workspace with real small models, build the
    missing processing images when Docker answers, then open the app."""
    from picsellia_tui.cli.demo import prepare_demo

    s = prepare_demo(STATE["config"], STATE["overrides"], build=build)
    if open_app:
        open_tui(s)


def main(open_app: OpenApp | None = None) -> None:
    """Run the command line; `open_app` opens the interface when a command asks for
    it (the bare command, `demo`)."""
    STATE["open_app"] = open_app
    # A plain `kill`: unwind like an exit (clean-ups and atexit run: no ssh
    # transport outlives the command), where the default would just vanish.
    signal.signal(signal.SIGTERM, _terminated)
    with reported():
        try:
            # Without standalone mode click returns the code of a typer.Exit.
            rc = app(standalone_mode=False)
        except typer.Exit as exc:
            sys.exit(exc.exit_code)
        except typer.Abort:  # click's own Ctrl-C
            raise KeyboardInterrupt from None
        sys.exit(rc if isinstance(rc, int) else 0)


def _terminated(signum: int, _frame: object) -> None:
    # A thread may be blocked reading from an ssh transport: end those first, or
    # the exit would wait for the thread (up to its read timeout).
    hosts = sys.modules.get("picsellia_tui.engine.hosts")
    if hosts is not None:
        hosts.end_ssh_transports()
    raise SystemExit(128 + signum)
