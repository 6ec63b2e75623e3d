"""Errors of the command line: one clear line on stderr and an exit code, never a
traceback on the terminal (an unexpected one goes to a crash file in the user's
own state dir: engine/crashlog.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from picsellia_tui.humanize import first_line


class CliError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 1) -> NoReturn:
    raise CliError(message, code)


@contextmanager
def reported() -> Iterator[None]:
    """Whatever goes wrong inside ends the process with one line and an exit code
    (130 for Ctrl-C): the command line and the app opened without it share this."""
    try:
        yield
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # SystemExit passes through untouched
        sys.exit(report(exc))


def report(exc: BaseException) -> int:
    """One clear line on stderr, never a traceback (that goes to a file)."""
    # Usage errors: click's, or the copy of click that typer >= 0.2x vendors.
    show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
    if callable(show) and isinstance(code, int):
        show()
        return code
    if isinstance(exc, CliError):
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    from picsellia_tui.engine.config import ConfigError

    known: tuple[type[BaseException], ...] = (ConfigError,)
    try:
        from picsellia_tui.engine.errors import EngineError
        from picsellia_tui.engine.executors.base import ExecutorError
        from picsellia_tui.storage.blobs import BlobCorrupted
        from picsellia_tui.storage.db import StorageError

        known += (EngineError, ExecutorError, StorageError, BlobCorrupted)
    except ImportError:
        pass
    if isinstance(exc, known):
        print(f"error: {first_line(exc)}", file=sys.stderr)
        return (
            2
            if type(exc).__name__
            in ("InvalidInput", "NotFound", "Incompatible", "DefinitionError", "ConfigError")
            else 1
        )
    from picsellia_tui.engine.crashlog import write_crash_log

    path, why_not = write_crash_log(exc)
    first = str(exc).splitlines()[0] if str(exc) else ""
    where = f"details in {path}" if path else f"no crash log: {why_not}"
    print(f"error: unexpected {type(exc).__name__}: {first} ({where})", file=sys.stderr)
    return 70
