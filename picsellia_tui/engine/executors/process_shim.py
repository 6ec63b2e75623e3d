"""Runs one processing command for the process executor and outlives the engine.

    python -m picsellia_tui.engine.executors.process_shim RUN_DIR -- CMD...

It stamps every stdout/stderr line as it arrives into RUN_DIR/capture.log
(`<ts_ns> <o|e> <json string>` per line) and writes RUN_DIR/exit.json when the
command ends. The engine tails those files, so an engine killed mid-run loses
nothing: it reads on from where it stopped. Stdlib only, on purpose.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

MAX_LINE = 1 << 20  # a line with no newline is cut every MiB


def _emit(out: IO[str], stream: str, raw: bytes | bytearray) -> None:
    text = raw.decode("utf-8", errors="replace")
    out.write(f"{time.time_ns()} {stream} {json.dumps(text)}\n")


def main(argv: list[str]) -> int:
    run_dir = Path(argv[0])
    cmd = argv[argv.index("--") + 1 :]
    # Stay alive on SIGTERM so the command's exit is still recorded; the handler
    # (unlike SIG_IGN) is reset in the child, which gets the signal as usual.
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)
    capture = (run_dir / "capture.log").open("a", encoding="utf-8", buffering=1)
    try:
        child = subprocess.Popen(
            cmd,
            cwd=os.environ.get("PICSELLIA_CWD") or None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        _emit(capture, "e", f"cannot start {cmd[0]!r}: {exc.strerror or exc}".encode())
        _finish(run_dir, 127)
        return 127
    sel = selectors.DefaultSelector()
    assert child.stdout is not None and child.stderr is not None
    pending: dict[str, bytearray] = {"o": bytearray(), "e": bytearray()}
    sel.register(child.stdout, selectors.EVENT_READ, "o")
    sel.register(child.stderr, selectors.EVENT_READ, "e")
    open_streams = 2
    while open_streams:
        for key, _ in sel.select():
            stream: str = key.data
            chunk = os.read(key.fd, 65536)
            buf = pending[stream]
            if not chunk:
                if buf:
                    _emit(capture, stream, bytes(buf))
                    buf.clear()
                sel.unregister(key.fileobj)
                open_streams -= 1
                continue
            buf += chunk
            *lines, rest = buf.split(b"\n")
            for line in lines:
                _emit(capture, stream, line)
            while len(rest) > MAX_LINE:
                _emit(capture, stream, rest[:MAX_LINE])
                rest = rest[MAX_LINE:]
            pending[stream] = bytearray(rest)
    code = child.wait()
    if code < 0:  # killed by a signal: report it the way a shell (and Docker) does
        code = 128 - code
    capture.close()
    _finish(run_dir, code)
    return 0


def _finish(run_dir: Path, code: int) -> None:
    tmp = run_dir / "exit.json.tmp"
    tmp.write_text(json.dumps({"exit_code": code, "finished_ns": time.time_ns()}))
    os.replace(tmp, run_dir / "exit.json")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
