"""The staging step of a Swarm run, run inside the task (its source is passed to
`python3 -c`; standard library only, never imports the host package).

Before the processing's command: fetch `/picsellia/{context.json, inputs/}` from
the engine's API (`PTUI_FILES_URL`, the run's token in `PTUI_FILES_TOKEN`) into the
task's tmpfs. Then run the command (argv) as a child, passing SIGTERM/SIGINT on.
After it exits 0: send `/picsellia/outputs/` back as a tar. Exits with the
command's code; a staging failure says why on stderr and exits 125 (before) or
126 (after).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from typing import IO, Any

ROOT = "/picsellia"
RETRY_S = 180


def _request(method: str, path: str, body: IO[bytes] | None = None, size: int | None = None) -> Any:
    url = os.environ["PTUI_FILES_URL"].rstrip("/") + path
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("Authorization", "Bearer " + os.environ["PTUI_FILES_TOKEN"])
    if size is not None:
        req.add_header("Content-Length", str(size))
        req.add_header("Content-Type", "application/x-tar")
    return urllib.request.urlopen(req, timeout=300)


def fetch_inputs() -> None:
    with (
        _request("GET", "/ptui/run/files.tar") as res,
        tarfile.open(fileobj=res, mode="r|") as tar,
    ):
        for member in tar:
            # The Docker executor's tar for put_archive into /picsellia:
            # {context.json, inputs/..., outputs/}, relative to that folder.
            name = member.name
            parts = name.split("/")
            if parts[0] not in ("context.json", "inputs", "outputs") or ".." in parts:
                raise RuntimeError("unexpected entry in the run's files: " + name)
            if not (member.isdir() or member.isfile()):
                raise RuntimeError("unexpected entry in the run's files: " + name)
            tar.extract(member, ROOT, set_attrs=False)
    os.chmod(ROOT + "/outputs", 0o777)
    os.chmod(ROOT + "/inputs", 0o755)


def send_outputs() -> None:
    path = "/tmp/ptui-outputs.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(ROOT + "/outputs", arcname="outputs")
    size = os.path.getsize(path)
    with open(path, "rb") as fh, _request("PUT", "/ptui/run/outputs.tar", fh, size) as res:
        res.read()
    os.unlink(path)


def with_retry(fn: Any) -> None:
    """An engine restarting (or briefly unreachable) is waited for, up to RETRY_S:
    the run's outputs must not be lost because the engine was away a moment."""
    deadline = time.monotonic() + RETRY_S
    while True:
        try:
            fn()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            # 403: a restarted engine that has not taken the run back yet.
            refused = isinstance(exc, urllib.error.HTTPError) and exc.code not in (403, 502, 503)
            if refused or time.monotonic() > deadline:
                raise
            time.sleep(2)


def no_new_privileges() -> None:
    """`no-new-privileges` for this process and everything it starts (the
    processing): setuid binaries and file capabilities give nothing. Swarm's
    service API (Engine 20.10) has no such option; prctl(2) needs no privilege."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


def main(argv: list[str]) -> int:
    try:
        no_new_privileges()
    except Exception as exc:
        print(f"picsellia-tui staging: cannot confine the run: {exc}", file=sys.stderr)
        return 125
    try:
        with_retry(fetch_inputs)
    except Exception as exc:
        print(f"picsellia-tui staging: could not fetch the run's files: {exc}", file=sys.stderr)
        return 125
    if not argv:
        print("picsellia-tui staging: no command to run", file=sys.stderr)
        return 125
    try:
        child = subprocess.Popen(argv)
    except OSError as exc:
        print(f"picsellia-tui staging: cannot run {argv[0]}: {exc}", file=sys.stderr)
        return 127
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: child.send_signal(s))
    code = child.wait()
    if code < 0:
        code = 128 - code
    if code == 0:
        try:
            with_retry(send_outputs)
        except Exception as exc:
            print(f"picsellia-tui staging: could not send the outputs: {exc}", file=sys.stderr)
            return 126
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
