"""Hosts that do not answer (issue 16, item 6): an ssh host whose port accepts and
then says nothing (a black hole), a tcp:// host that never completes the TCP
handshake. A command fails within the host's `connect_timeout` (not a build's 30
minutes) with one line, and no `ssh` process outlives it, even when it is killed
while still connecting."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.helpers import (
    Tally,
    cli_env,
    config_file,
    make_settings,
    message_problem,
    run_cli,
)

AREA = "security"
K = "unreachable hosts"
EXE = str(Path(sys.executable).with_name("picsellia-tui"))


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts connections and never writes a byte."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(5)
    for c in held:
        c.close()
    srv.close()


@pytest.fixture
def syn_drop() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops new SYNs, so a TCP
    connect waits forever (a firewall that drops, seen from here)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    time.sleep(0.2)
    yield port
    for c in fillers:
        c.close()
    srv.close()


def _ssh_procs(port: int) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if " ssh " in f" {ln} " and f"-p {port}" in ln]


def _config(tmp_path: Path, url: str, connect_timeout: float) -> Path:
    host = {"name": "far", "url": url, "connect_timeout": connect_timeout}
    s = make_settings(tmp_path, executor="docker", hosts=[host], default_host="far")
    return config_file(s, tmp_path / "config.toml")


@pytest.mark.parametrize("kind", ["ssh black hole", "tcp SYN dropped"])
def test_a_build_on_a_host_that_does_not_answer_fails_in_one_line(
    tmp_path: Path, tally: Tally, kind: str, request: pytest.FixtureRequest
) -> None:
    """`processings build` used a 1,800 s timeout for connecting: ssh got
    ConnectTimeout=1800 and hung for minutes."""
    if kind.startswith("ssh"):
        port = request.getfixturevalue("black_hole")
        url = f"ssh://root@127.0.0.1:{port}"
    else:
        port = request.getfixturevalue("syn_drop")
        url = f"tcp://127.0.0.1:{port}"
    cfg = _config(tmp_path, url, 2)
    t0 = time.monotonic()
    out = run_cli(["--config", str(cfg), "processings", "build", "rel-probe"], env=cli_env(),
                  timeout=120)  # fmt: skip
    took = time.monotonic() - t0
    lines = out.stderr.strip().splitlines()  # a progress header, the failure, a summary
    ok = (out.returncode != 0 and lines and took < 45 and not _ssh_procs(port)
          and all(message_problem(ln) is None for ln in lines)
          and any(f"127.0.0.1:{port}" in ln for ln in lines))  # fmt: skip
    tally.bad(AREA, ok, f"build on a {kind}: rc {out.returncode} {lines[-1:]!r:.100}", K)
    assert ok, (out.returncode, round(took, 1), out.stderr, _ssh_procs(port))


def test_no_ssh_process_outlives_a_killed_command(
    tmp_path: Path, tally: Tally, black_hole: int
) -> None:
    """Killing the command while ssh is still connecting left `ssh ... docker
    system dial-stdio` running with parent 1."""
    cfg = _config(tmp_path, f"ssh://root@127.0.0.1:{black_hole}", 120)
    p = subprocess.Popen([EXE, "--config", str(cfg), "processings", "build", "rel-probe"],
                         env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    while not _ssh_procs(black_hole) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not _ssh_procs(black_hole):
        p.kill()
        raise AssertionError(f"ssh never started: {p.communicate()[1]!r}")
    p.send_signal(signal.SIGTERM)
    p.wait(30)
    time.sleep(0.5)
    left = _ssh_procs(black_hole)
    for ln in left:  # never leave them behind for the other tests
        os.kill(int(ln.split()[0]), signal.SIGKILL)
    ok = not left and p.returncode != 0
    tally.bad(AREA, ok, f"ssh left after SIGTERM: {left}", K)
    assert ok, (p.returncode, left)


def test_doctor_on_a_black_hole_answers_within_the_connect_timeout(
    tmp_path: Path, tally: Tally, black_hole: int
) -> None:
    cfg = _config(tmp_path, f"ssh://root@127.0.0.1:{black_hole}", 2)
    t0 = time.monotonic()
    out: Any = run_cli(["--config", str(cfg), "doctor"], env=cli_env(), timeout=120)
    took = time.monotonic() - t0
    ok = out.returncode != 0 and "far" in out.stdout + out.stderr and took < 45
    ok = ok and "Traceback" not in out.stdout + out.stderr and not _ssh_procs(black_hole)
    tally.bad(AREA, ok, f"doctor on a black hole: rc {out.returncode} in {took:.0f} s", K)
    assert ok, (out.returncode, took, out.stdout, out.stderr)
