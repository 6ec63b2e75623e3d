"""Console entry point: `--version` answers before anything heavy is imported."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from picsellia_tui import __version__

        print(f"picsellia-tui {__version__}")
        return
    from picsellia_tui.tui.cli import main as cli_main

    cli_main()
