"""Restarting the local dockerd for the tests that need it (root only)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

CONTAINERD = "containerd --config /var/run/docker/containerd/containerd.toml"


def _pids(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaps counts as gone: PID 1 here may not reap)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_gone(pids: list[int], deadline: float, what: str) -> None:
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not stop")
        time.sleep(0.2)


def restart_dockerd() -> None:
    """Stop the daemon (it stops its containers) and start it again as docker-up
    does. Its containerd must be gone first: a new dockerd that finds the old one
    still shutting down times out dialing it and exits."""
    out = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True)
    if out.returncode != 0 or os.geteuid() != 0:
        pytest.fail("dockerd must run here, as root, to restart it")
    pid = int(out.stdout.split()[0])
    managed = _pids(CONTAINERD)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 90
    _wait_gone([pid], deadline, "dockerd")
    _wait_gone(managed, deadline, "dockerd's containerd")
    for _attempt in range(3):
        with open("/var/log/dockerd.log", "ab") as log:
            proc = subprocess.Popen(
                ["dockerd"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        start = time.monotonic()
        while time.monotonic() - start < 60:
            if subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
                return
            if proc.poll() is not None:
                break  # it gave up: start it again
            time.sleep(0.5)
        else:
            proc.terminate()
        _wait_gone(_pids(CONTAINERD), time.monotonic() + 30, "containerd")
    pytest.fail("dockerd did not come back after 3 starts; see /var/log/dockerd.log")
