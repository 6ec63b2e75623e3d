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
import stat
import struct
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


def settings_key(config: Path | None, overrides: dict[str, Any]) -> str:
    """A digest of everything settings are made of: the config file (its path and
    bytes), every PICSELLIA_TUI_* variable and the command-line overrides. A
    running engine serves a command only when its own key is the same: any
    setting may change a run's outcome (an output quota, a memory limit...).
    `config` is the file the lookup found (None: no file)."""
    env = sorted(
        (k, v)
        for k, v in os.environ.items()
        if k.startswith("PICSELLIA_TUI_")
        # what a command reads for itself, not settings
        and not k.startswith("PICSELLIA_TUI_SECRET_")
        and k != "PICSELLIA_TUI_CONFIG"
    )
    h = hashlib.sha256()
    h.update(json.dumps([env, sorted((k, str(v)) for k, v in overrides.items())]).encode())
    if config is not None:
        h.update(str(config.expanduser().absolute()).encode() + b"\0")
        try:
            h.update(config.read_bytes())
        except OSError:
            h.update(b"unreadable")
    return h.hexdigest()[:32]


def client_settings_key(config: Path | None, overrides: dict[str, Any]) -> str:
    """settings_key() as the command's own settings would resolve the config file."""
    path = config
    if path is None and os.environ.get("PICSELLIA_TUI_CONFIG"):
        path = Path(os.environ["PICSELLIA_TUI_CONFIG"]).expanduser()
    if path is None:
        import platformdirs

        from picsellia_tui.engine.lightconfig import APP

        default = Path(platformdirs.user_config_dir(APP)) / "config.toml"
        path = default if default.is_file() else None
    return settings_key(path, overrides)


class Unavailable(Exception):
    """No engine serves this database (or it does not share our settings)."""


class Untrusted(Unavailable):
    """The socket's folder or the process listening on it is not this user's:
    nothing was sent. str() is the one line to show."""


def check_private_dir(d: Path) -> None:
    """Raise Untrusted unless `d` is a real folder (not a symlink) of this user
    that nobody else can enter: the runtime dir sits in a shared /tmp when
    XDG_RUNTIME_DIR is unset, where another user may have made it first."""
    try:
        st = d.lstat()
    except FileNotFoundError:
        raise Unavailable(f"{d} does not exist") from None
    except OSError as exc:
        raise Untrusted(f"engine socket folder {d}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise Untrusted(f"engine socket folder {d} is not a folder (a symlink?): not used")
    if st.st_uid != os.geteuid():
        raise Untrusted(
            f"engine socket folder {d} belongs to uid {st.st_uid}, not to you: not used "
            "(remove it, or set XDG_RUNTIME_DIR)"
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise Untrusted(
            f"engine socket folder {d} is open to other users "
            f"(mode {stat.S_IMODE(st.st_mode):04o}): not used"
        )


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a connected Unix socket, as
    the kernel saw it (SO_PEERCRED: pid, uid, gid)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


@contextlib.contextmanager
def connect(database: Path, timeout: float = 2.0) -> Iterator[socket.socket]:
    """A connection to the engine serving `database`, once the socket's folder
    and the listening process are known to be this user's own (else Untrusted,
    before a byte is sent: requests carry secret parameter values)."""
    path = socket_path(database)
    check_private_dir(path.parent)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError as exc:  # no socket, stale socket, no permission
            raise Unavailable(str(exc)) from None
        uid = peer_uid(sock)
        if uid != os.geteuid():
            raise Untrusted(
                f"the engine socket {path} is served by uid {uid}, not by you: nothing sent"
            )
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
