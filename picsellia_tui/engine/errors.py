"""Errors the engine raises for users: each one renders as one clear line."""

from __future__ import annotations


class EngineError(Exception):
    """Base: str(exc) is the line shown to the user."""


class NotFound(EngineError):
    pass


class InvalidInput(EngineError):
    """Bad user input; `field` names what to fix (a parameter, 'version_name', ...)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Incompatible(EngineError):
    """The processing cannot run on that target; the message says why."""


class RerunRefused(EngineError):
    pass


class DefinitionError(EngineError):
    """A broken processing.toml: file, key and reason."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        where = f"{file}: {key}: " if key else f"{file}: "
        super().__init__(f"{where}{reason}")
        self.file = file
        self.key = key
        self.reason = reason


def read_only(name: str, what: str) -> str:
    """Why a public processing cannot be `what` (updated, removed): one line, the
    same from the engine, the command line and the app."""
    return f"{name} is a public processing (bundled with the app, read-only): it cannot be {what}"
