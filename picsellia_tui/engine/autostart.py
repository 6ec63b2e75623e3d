"""Starting the workspace's background engine when none serves it.

A command or the app that needs an engine (to launch, follow, wait, cancel) and
finds no socket starts one: `picsellia-tui engine serve --idle-exit` in its own
session (a closed terminal or a Ctrl-C does not reach it), output appended to
`engine.log` in the data dir. It supervises every run, serves clients on the
private socket and exits once idle (see engine/daemon.py).

Ten commands racing to start one end with exactly one: a start lock (flock) in
the runtime dir is held while one of them spawns the engine and waits for its
socket; the others wait on the lock, then find the socket. The engine's own
serve lock (engine/control.py) would refuse a second one anyway.

Standard library only: commands call this before deciding to import anything.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from picsellia_tui.engine.control_client import (
    Unavailable,
    Untrusted,
    check_private_dir,
    peer_uid,
    runtime_dir,
    socket_path,
)

LOG_NAME = "engine.log"
START_TIMEOUT_S = 60.0  # a first start migrates the database and syncs the catalog


class StartFailed(Exception):
    """No engine could be started; the message says why in one line."""


def serving(database: Path) -> bool:
    """An engine of this user accepts connections on the workspace's socket.
    StartFailed when the socket's folder or its listener is another user's: no
    engine of ours can serve there (and nothing may be sent to that one)."""
    path = socket_path(database)
    try:
        check_private_dir(path.parent)
    except Untrusted as exc:
        raise StartFailed(str(exc)) from None
    except Unavailable:
        return False  # no folder yet
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2.0)
        try:
            s.connect(str(path))
            uid = peer_uid(s)
        except OSError:
            return False
    if uid != os.geteuid():
        raise StartFailed(f"the engine socket {path} is served by uid {uid}, not by you")
    return True


def _private_runtime_dir() -> Path:
    d = runtime_dir()
    try:
        d.mkdir(mode=0o700, exist_ok=True)
        st = d.lstat()
    except OSError as exc:
        raise StartFailed(f"cannot make {d}: {exc.strerror}") from None
    if not (d.is_dir() and not d.is_symlink()) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise StartFailed(f"{d} is not a private directory of this user")
    return d


def engine_command(root_args: list[str]) -> list[str]:
    """The background engine: this Python, this package, the command's own root
    options (--config, --data-dir, --executor) so it opens the same workspace."""
    return [sys.executable, "-m", "picsellia_tui", *root_args, "engine", "serve", "--idle-exit"]


def ensure_engine(
    database: Path, data_dir: Path, root_args: list[str], timeout: float = START_TIMEOUT_S
) -> bool:
    """Make sure an engine serves `database`. True when this call started it,
    False when one was serving already. Raises StartFailed."""
    if serving(database):
        return False
    lock_path = _private_runtime_dir() / (socket_path(database).stem + ".start")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() > deadline:
                raise StartFailed("another command has been starting the engine for too long")
            time.sleep(0.02)
        if serving(database):  # started by whoever held the lock before us
            return False
        _spawn_and_wait(database, data_dir, root_args, deadline)
        return True
    finally:
        os.close(fd)  # releases the lock


def _spawn_and_wait(database: Path, data_dir: Path, root_args: list[str], deadline: float) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_path = data_dir / LOG_NAME
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StartFailed(f"cannot write the engine log in {data_dir}: {exc.strerror}") from None
    try:
        start_at = os.lseek(log_fd, 0, os.SEEK_END)
        proc = subprocess.Popen(
            engine_command(root_args),
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,  # its own session: no terminal signal reaches it
            close_fds=True,
            cwd="/",
        )
    except OSError as exc:
        raise StartFailed(f"cannot start the engine: {exc.strerror}") from None
    finally:
        os.close(log_fd)
    while not serving(database):
        if proc.poll() is not None:
            if serving(database):  # it lost the race to an engine started by hand
                return
            raise StartFailed(f"the engine exited at start: {_last_line(log_path, start_at)}")
        if time.monotonic() > deadline:
            raise StartFailed(f"the engine did not open its socket in time (see {log_path})")
        time.sleep(0.02)


def _last_line(log_path: Path, start_at: int) -> str:
    try:
        with log_path.open("rb") as f:
            f.seek(start_at)
            lines = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return lines[-1] if lines else f"no output (see {log_path})"
