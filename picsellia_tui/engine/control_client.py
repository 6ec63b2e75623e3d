"""Talking to an engine that is already running (`engine serve`, the app).

A command that finds a live engine for its database hands the work to it over a
Unix socket instead of starting an engine of its own, the way `docker` talks to
dockerd: it then imports nothing heavy (the standard library and platformdirs,
enforced by a test) and the running engine starts the container at once.

Protocol: the client sends one JSON object on one line; the server answers with
JSON lines, each an event: ``{"event": "job" | "log" | "final" | "error" |
"mismatch", ...}``. A client that cannot reach a server, or whose settings the
server does not share, falls back to an engine of its own: the socket is a fast
path, never the only way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs

APP = "picsellia-tui"  # as engine.config.APP (that module imports pydantic)
MAX_LINE = 64 * 2**20  # a log batch of 5,000 long lines fits


def runtime_dir() -> Path:
    """A directory only this user can write to, for the engine's socket."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"picsellia-tui-{os.getuid()}"


def socket_path(database: Path) -> Path:
    """The socket of the engine serving `database`. It lives in the runtime dir,
    named after the database's absolute path, because socket paths are limited to
    107 bytes and a workspace may sit deep in the file system."""
    key = hashlib.sha256(str(database.expanduser().absolute()).encode()).hexdigest()[:24]
    return runtime_dir() / f"engine-{key}.sock"


def database_hint(config: Path | None, overrides: dict[str, Any]) -> tuple[Path, str] | None:
    """(database path, executor) as the settings would resolve them, without
    loading the settings (pydantic alone costs ~0.3 s); None when in doubt, and
    the caller then starts its own engine, which reports any config problem.

    The server checks both against its own settings, so a wrong guess here can
    only lose the fast path, never run a job in the wrong workspace."""
    try:
        file_values: dict[str, Any] = {}
        path = config
        if path is None and os.environ.get("PICSELLIA_TUI_CONFIG"):
            path = Path(os.environ["PICSELLIA_TUI_CONFIG"]).expanduser()
        if path is not None and not path.is_file():
            return None  # the engine of our own will say what is wrong
        path = path or Path(platformdirs.user_config_dir(APP)) / "config.toml"
        if path.is_file():
            with path.open("rb") as f:
                file_values = tomllib.load(f)

        def value(key: str) -> Any:
            if key in overrides:
                return overrides[key]
            env = os.environ.get(f"PICSELLIA_TUI_{key.upper()}")
            if env is not None:
                return env
            return file_values.get(key)

        data_dir = value("data_dir")
        data = Path(data_dir) if data_dir else Path(platformdirs.user_data_dir(APP))
        database = value("database")
        db = Path(database) if database else data / "picsellia.db"
        return db, str(value("executor") or "docker")
    except (OSError, ValueError, TypeError):
        return None


class Unavailable(Exception):
    """No engine serves this database (or it does not share our settings)."""


@contextlib.contextmanager
def connect(database: Path, timeout: float = 2.0) -> Iterator[socket.socket]:
    path = socket_path(database)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError as exc:  # no socket, stale socket, no permission
            raise Unavailable(str(exc)) from None
        sock.settimeout(None)
        yield sock
    finally:
        sock.close()


def request(database: Path, executor: str, op: str, **args: Any) -> Iterator[dict[str, Any]]:
    """Send one request and yield the server's events. Raises Unavailable before
    the first event when no engine serves `database` with `executor`."""
    with connect(database) as sock:
        body = {"op": op, "database": str(database.expanduser().absolute()), "executor": executor}
        body.update(args)
        sock.sendall(json.dumps(body).encode() + b"\n")
        rfile = sock.makefile("rb")
        first = True
        while True:
            line = rfile.readline(MAX_LINE)
            if not line:
                if first:
                    raise Unavailable("the engine closed the connection")
                raise ConnectionError("the engine closed the connection mid-answer")
            event = json.loads(line)
            if first and event.get("event") == "mismatch":
                raise Unavailable(str(event.get("message")))
            first = False
            yield event
            if event.get("event") in ("final", "error"):
                return
