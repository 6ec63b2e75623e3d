"""Helpers for the interface benchmarks: an app that timestamps its frames, and a
pseudo-terminal runner for whole processes (first frame, idle CPU)."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual._compositor import CompositorUpdate

import picsellia_tui.tui.app
from picsellia_tui.tui.app import PicselliaApp

Check = Callable[[], bool]


class TimedApp(PicselliaApp):
    """PicselliaApp that renders each frame to terminal bytes (as a real terminal
    would; the headless driver skips that) and records when it did."""

    CSS_PATH = str(Path(picsellia_tui.tui.app.__file__).with_name("app.tcss"))

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.frames: list[float] = []
        self._waiters: list[tuple[Check, list[float]]] = []

    def _display(self, screen: Any, renderable: Any) -> None:
        if isinstance(renderable, CompositorUpdate):
            renderable.render_segments(self.console)
        super()._display(screen, renderable)
        now = time.perf_counter()
        self.frames.append(now)
        for check, out in list(self._waiters):
            try:
                ok = check()
            except Exception:
                ok = False
            if ok:
                out.append(now)
                self._waiters.remove((check, out))

    def when(self, check: Check) -> list[float]:
        """A list that gets the time of the first frame after which `check()` holds."""
        out: list[float] = []
        self._waiters.append((check, out))
        return out


async def wait_list(pilot: Any, out: list[float], timeout: float) -> float:
    deadline = time.perf_counter() + timeout
    while not out:
        if time.perf_counter() > deadline:
            raise TimeoutError("no frame met the condition")
        await pilot.pause(0.005)
    return out[0]


# ------------------------------------------------------------------------- pty


class PtyProcess:
    """A command in a pseudo-terminal of `cols` x `rows`; output is read and kept
    (the tail) so the program never blocks on a full terminal."""

    def __init__(
        self, argv: list[str], cols: int = 120, rows: int = 36, env: dict[str, str] | None = None
    ) -> None:
        self.t0 = time.perf_counter()
        pid, fd = os.forkpty()
        if pid == 0:  # child
            e = dict(os.environ)
            e.update({"TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)})
            e.update(env or {})
            try:
                os.execvpe(argv[0], argv, e)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.buf = b""

    def read_for(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while True:
            left = end - time.perf_counter()
            if left <= 0:
                return
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    return
                if not data:
                    return
                self.buf = (self.buf + data)[-200_000:]

    def wait_for(self, marker: bytes, timeout: float) -> float:
        """Seconds from spawn until `marker` was seen in the output."""
        end = time.perf_counter() + timeout
        while marker not in self.buf:
            left = end - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"{marker!r} not seen; got {self.buf[-500:]!r}")
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    raise TimeoutError("the process closed its terminal") from None
                self.buf = (self.buf + data)[-200_000:]
        return time.perf_counter() - self.t0

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self, keys: bytes = b"\x11", timeout: float = 20.0) -> None:
        """Quit with `keys` (ctrl+q), then SIGTERM, then SIGKILL."""
        try:
            self.send(keys)
        except OSError:
            pass
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            self.read_for(0.1)
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
        else:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    break
                time.sleep(2)
                done, _ = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    break
        try:
            os.close(self.fd)
        except OSError:
            pass


async def settle(pilot: Any, check: Check, timeout: float) -> None:
    """Until `check()` holds (polled; not timed)."""
    deadline = time.perf_counter() + timeout
    while True:
        try:
            if check():
                return
        except Exception:
            pass
        if time.perf_counter() > deadline:
            raise TimeoutError("the app did not reach the expected state")
        await pilot.pause(0.05)
