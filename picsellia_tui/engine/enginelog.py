"""The engine's log file: `engine.log` in the workspace's data dir.

What the engine has to say while it supervises runs (a host that refuses us, a
traceback of a bug of ours) goes there, never to the terminal of the command or
the app that runs it: with a handler of ours on the package logger, Python's last
resort handler (stderr) stays out of it. Several engines in one process (tests) each
add their file and take it away again when they close.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from pathlib import Path

LOG_NAME = "engine.log"
LOGGER = "picsellia_tui"
_lock = threading.Lock()
_open: dict[Path, tuple[logging.Handler, int]] = {}  # path -> (handler, users)


class _PrivateFileHandler(logging.FileHandler):
    """A log file only its owner reads (it names hosts, paths and errors)."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(
            self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600
        )
        return os.fdopen(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)

    # A log file that cannot be opened or written (a full disk, a link planted in
    # its place) loses the record; it never prints a traceback on the terminal.
    def emit(self, record: logging.LogRecord) -> None:
        try:
            super().emit(record)
        except OSError:
            pass

    def handleError(self, record: logging.LogRecord) -> None:
        return


def attach(data_dir: Path) -> Path:
    """Send the engine's log records to <data_dir>/engine.log (until detach)."""
    path = (data_dir / LOG_NAME).absolute()
    with _lock:
        handler, users = _open.get(path, (None, 0))
        if handler is None:
            handler = _PrivateFileHandler(path, delay=True, encoding="utf-8")
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
            )
            logger = logging.getLogger(LOGGER)
            logger.addHandler(handler)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.INFO)
        _open[path] = (handler, users + 1)
    return path


def detach(data_dir: Path) -> None:
    path = (data_dir / LOG_NAME).absolute()
    with _lock:
        handler, users = _open.get(path, (None, 0))
        if handler is None:
            return
        if users > 1:
            _open[path] = (handler, users - 1)
            return
        del _open[path]
    logging.getLogger(LOGGER).removeHandler(handler)
    handler.close()
