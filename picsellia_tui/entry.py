"""Console entry point: `--version` and the bare app answer before anything heavy
is imported.

The app (`picsellia-tui [--config F] [--data-dir D] [--executor E]`) skips the
command-line parser: typer imports pydantic (~0.2 s) and the settings another
~0.15 s, all before a first frame. Here the settings load behind the first
frame, in the engine's start-up thread. Anything else goes to the typer CLI (`picsellia_tui.cli`),
which gets the way to open the app from here: this module is the one place that
knows both interfaces.
"""

from __future__ import annotations

import sys
from typing import Any

APP_OPTIONS = {"--config": "config", "--data-dir": "data_dir", "--executor": "executor"}


def main() -> None:
    args = sys.argv[1:]
    if args == ["--version"]:
        from picsellia_tui import __version__

        print(f"picsellia-tui {__version__}")
        return
    options = app_options(args)
    if options is not None and _open_app(options):
        return
    # Read commands answer without the typer command line (it imports pydantic).
    from picsellia_tui.cli.fast import run_fast

    if run_fast(args):
        return
    from picsellia_tui.cli.main import main as cli_main

    cli_main(open_app=open_app)


def open_app(settings: Any) -> None:
    """Open the Textual app (for the command line's bare command and `demo`)."""
    from picsellia_tui.cli.errors import fail

    try:
        from picsellia_tui.tui.app import run_app
    except ImportError as exc:
        fail(f"the interface cannot start: {exc}")
    run_app(settings)


def app_options(args: list[str]) -> dict[str, str] | None:
    """The root options when `args` open the app, else None."""
    out: dict[str, str] = {}
    it = iter(args)
    for arg in it:
        name, eq, value = arg.partition("=")
        if name not in APP_OPTIONS or APP_OPTIONS[name] in out:
            return None
        if not eq:
            nxt = next(it, None)
            if nxt is None or nxt.startswith("-"):
                return None  # let the CLI say what is missing
            value = nxt
        out[APP_OPTIONS[name]] = value
    return out


def _open_app(options: dict[str, str]) -> bool:
    try:
        from picsellia_tui.tui.app import run_app
    except ImportError:
        return False  # the CLI explains what is missing

    def load() -> Any:
        from pathlib import Path

        from picsellia_tui.engine.config import load_settings

        overrides: dict[str, object] = {k: v for k, v in options.items() if k != "config"}
        if "data_dir" in overrides:
            overrides["data_dir"] = Path(str(overrides["data_dir"]))
        config = options.get("config")
        return load_settings(Path(config) if config else None, **overrides)

    from picsellia_tui.cli.errors import reported

    with reported():
        run_app(load)
    return True
