"""Talking to the workspace's engine (the background one, `engine serve`, an app's).

Commands hand their work to the engine serving their database over a Unix
socket, the way `docker` talks to dockerd (engine/autostart.py starts one in
the background when none serves): they then import nothing heavy (the standard
library, enforced by a test) and the engine starts the container at once.

Protocol: the client sends one JSON object on one line; the server answers with
JSON lines, each an event: ``{"event": "started" | "log" | "records" | "final" |
"error" | "refused" | "mismatch" | "subscribed" | "engine", ...}`` (see
engine/control.py for the ops). A client that cannot reach a server, or whose
settings the server does not share, falls back to an engine of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
