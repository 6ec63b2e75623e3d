"""One engine per workspace, started on demand (issue 12), with the process
executor: every command is a real `picsellia-tui` process; no test starts
`engine serve` or an app unless it says so."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from picsellia_tui.engine.control_client import socket_path
from tests.core.test_control import EXE, Workspace, heavy_imports
from tests.core.test_control import ws as ws

STDERR_LINES = ("to stderr", "done")  # what test-copy writes on stderr


def per_stream(output: str) -> tuple[list[str], list[str]]:
    """`jobs logs` output split into test-copy's stdout and stderr lines: only the
    order within a stream is promised (docs/run-contract.md)."""
    lines = output.splitlines()
    return [t for t in lines if t not in STDERR_LINES], [t for t in lines if t in STDERR_LINES]


def wait_for(check: object, timeout: float = 60.0, every: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()  # type: ignore[operator]
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {check}")
        time.sleep(every)


def job(ws: Workspace, job_id: int) -> dict[str, object]:
    r = ws.cli("jobs", "show", str(job_id), "--json")
    assert r.returncode == 0, r.stderr
    data: dict[str, object] = json.loads(r.stdout)
    return data


def final(ws: Workspace, job_id: int) -> bool:
    return job(ws, job_id)["status"] in ("succeeded", "failed", "killed")


def test_a_launch_with_no_engine_ends_truthfully_with_no_one_watching(ws: Workspace) -> None:
    """The command returns as the run starts; the background engine it started
    records the end, the outputs and the whole log."""
    r = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=3", "-p", "sleep=4", importtime=True)
    assert r.returncode == 0, r.stderr
    assert heavy_imports(r.stderr) == set()
    assert json.loads(ws.cli("jobs", "list", "--json").stdout)[0]["status"] == "running"
    wait_for(lambda: final(ws, 1), timeout=60)
    j = job(ws, 1)
    run = j["runs"][0]  # type: ignore[index]
    assert (j["status"], run["exit_code"], run["output_version_id"]) == ("succeeded", 0, 2)
    r = ws.cli("jobs", "logs", "1")
    assert per_stream(r.stdout) == (
        ["starting job 1 run 1 attempt 1", "line 0", "line 1", "line 2"],
        ["to stderr", "done"],
    )
    assert len(ws.background_engines()) == 1


def test_read_commands_answer_the_same_from_every_path(ws: Workspace) -> None:
    """Served by the engine, from the light read path, from an engine of the
    command's own: the same text and the same JSON; only the engine-less paths
    import nothing heavy."""
    r = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=2", "-p", "token=s3cret-token", "--wait")
    assert r.returncode == 0, r.stderr
    r = ws.cli("launch", "test-copy", "m/v1", "-p", "fail=true", "--wait")
    assert r.returncode == 1
    commands = [
        ("jobs", "list"),
        ("jobs", "list", "--json"),
        ("jobs", "list", "--status", "failed", "-n", "1"),
        ("jobs", "show", "1"),
        ("jobs", "show", "2", "--json"),
        ("jobs", "logs", "1", "--tail", "2", "-t"),
        ("models", "list"),
        ("models", "list", "--json"),
        ("models", "show", "m/v1"),
        ("models", "show", "2", "--json"),
        ("processings", "list"),
        ("processings", "list", "--json"),
        ("processings", "show", "test-copy"),
        ("processings", "show", "test-copy", "--json"),
        ("jobs", "show", "99"),
        ("models", "show", "m/nope"),
    ]

    def outputs(env: dict[str, str] | None = None) -> list[tuple[int, str, str]]:
        saved = dict(ws.env)
        ws.env.update(env or {})
        try:
            out = []
            for args in commands:
                r = ws.cli(*args, importtime=True)
                err = "\n".join(
                    line for line in r.stderr.splitlines() if not line.startswith("import time:")
                )
                out.append((r.returncode, r.stdout, err))
                if env is None and not ws.background_engines():  # the light path
                    assert heavy_imports(r.stderr) == set(), args
            return out
        finally:
            ws.env.clear()
            ws.env.update(saved)

    served = outputs()  # the launch's engine is still there (idle grace)
    assert ws.background_engines()
    for pid in ws.background_engines():
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not ws.background_engines())
    light = outputs()
    own = outputs({"PICSELLIA_READ_PATH": "engine"})
    assert light == own
    assert served == own
    assert "s3cret" not in str(light)
    assert light[-2][0] == 2 and light[-2][2] == "error: no job 99"
    assert light[-1][2] == "error: model 'm' has no version 'nope'"


def test_an_engine_killed_mid_run_is_replaced_and_the_run_completes(ws: Workspace) -> None:
    r = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=4", "-p", "sleep=4")
    assert r.returncode == 0, r.stderr
    (pid,) = ws.background_engines()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not ws.background_engines())
    assert socket_path(ws.database).exists()  # left behind by the dead engine
    # The next command that needs an engine starts one, which adopts the run.
    r = ws.cli("jobs", "logs", "-f", "1")
    assert r.returncode == 0, r.stderr
    assert per_stream(r.stdout)[1][-1] == "done"
    wait_for(lambda: final(ws, 1))
    assert job(ws, 1)["status"] == "succeeded"
    (new,) = ws.background_engines()
    assert new != pid


def test_ten_racing_launches_start_exactly_one_engine(ws: Workspace) -> None:
    def launch(i: int) -> subprocess.CompletedProcess[str]:
        return ws.cli("launch", "test-copy", "m/v1", "-p", "lines=1", "--name", f"r{i}")

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(launch, range(10)))
    assert [r.returncode for r in results] == [0] * 10, [r.stderr for r in results]
    log = (ws.tmp / "data" / "engine.log").read_text()
    assert log.count(" serving ") == 1, log
    assert len(ws.background_engines()) == 1
    wait_for(lambda: all(j["status"] == "succeeded" for j in jobs(ws)) and len(jobs(ws)) == 10)


def jobs(ws: Workspace) -> list[dict[str, object]]:
    data: list[dict[str, object]] = json.loads(ws.cli("jobs", "list", "--json").stdout)
    return data


def test_the_engine_leaves_once_idle_and_takes_its_socket(ws: Workspace) -> None:
    ws.env["PICSELLIA_TUI_ENGINE_IDLE_SECONDS"] = "1"
    r = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=1", "-p", "sleep=2")
    assert r.returncode == 0, r.stderr
    (pid,) = ws.background_engines()
    # A run is active: the engine stays past its grace.
    time.sleep(1.5)
    assert ws.background_engines() == [pid]
    wait_for(lambda: not ws.background_engines(), timeout=60)
    assert job(ws, 1)["status"] == "succeeded"
    assert not socket_path(ws.database).exists()
    assert (
        "idle for 1 s (no run, no client); leaving" in (ws.tmp / "data" / "engine.log").read_text()
    )


def test_a_connected_client_keeps_the_engine(ws: Workspace) -> None:
    ws.env["PICSELLIA_TUI_ENGINE_IDLE_SECONDS"] = "1"
    r = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=1")
    assert r.returncode == 0, r.stderr
    (pid,) = ws.background_engines()
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(socket_path(ws.database)))
        body = {
            "op": "subscribe",
            "database": str(ws.database.absolute()),
            "executor": "process",
        }
        s.sendall(json.dumps(body).encode() + b"\n")
        assert json.loads(s.makefile("rb").readline())["event"] == "subscribed"
        time.sleep(3)
        assert ws.background_engines() == [pid]
    wait_for(lambda: not ws.background_engines(), timeout=60)


CLIENT_AS_NOBODY = """
import ctypes, json, os, socket, sys
# Another user (effective uid 65534), who may still reach the root-only socket
# path (file-system uid 0: the way root itself would): only the engine's peer
# credential check stands between them.
os.setresgid(65534, 65534, 0)
os.setresuid(65534, 65534, 0)
ctypes.CDLL(None, use_errno=True).setfsuid(0)
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(json.dumps({"op": "subscribe", "database": sys.argv[2], "executor": "process"}).encode() + b"\\n")
print(s.makefile("rb").readline().decode(), end="")
"""


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
def test_a_client_of_another_uid_is_refused(ws: Workspace) -> None:
    r = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=1", "-p", "sleep=3")
    assert r.returncode == 0, r.stderr
    sock = str(socket_path(ws.database))
    r = subprocess.run(
        [sys.executable, "-c", CLIENT_AS_NOBODY, sock, str(ws.database.absolute())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert answer["event"] == "refused"
    assert answer["message"] == "this engine belongs to another user"
    log = (ws.tmp / "data" / "engine.log").read_text()
    refused = [line for line in log.splitlines() if "refused a client" in line]
    assert len(refused) == 1, log
    assert "refused a client of uid 65534 (pid " in refused[0]
    # The engine goes on serving its own user.
    wait_for(lambda: final(ws, 1))


@pytest.fixture
def ten_s_grace(ws: Workspace) -> Iterator[Workspace]:
    ws.env["PICSELLIA_TUI_ENGINE_IDLE_SECONDS"] = "10"
    yield ws


def test_jobs_wait_exits_like_launch_wait(ten_s_grace: Workspace) -> None:
    ws = ten_s_grace
    assert ws.cli("launch", "test-copy", "m/v1", "-p", "sleep=1").returncode == 0
    assert ws.cli("launch", "test-copy", "m/v1", "-p", "fail=true", "-p", "sleep=1").returncode == 0
    r = ws.cli("jobs", "wait", "1")
    assert (r.returncode, r.stdout.strip()) == (0, "job 1 run #1: succeeded (exit 0)")
    r = ws.cli("jobs", "wait", "1", "2")
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.splitlines()[1] == "job 2 run #1: failed (exit 1)"
    assert ws.cli("launch", "test-copy", "m/v1", "-p", "sleep=60").returncode == 0
    waiting = subprocess.Popen(
        [str(EXE), "jobs", "wait", "3", "--json"], env=ws.env, stdout=subprocess.PIPE, text=True
    )
    time.sleep(1)
    assert waiting.poll() is None
    assert ws.cli("jobs", "cancel", "3").returncode == 0
    out, _ = waiting.communicate(timeout=60)
    assert waiting.returncode == 3
    assert json.loads(out)[0]["status"] == "killed"
    r = ws.cli("jobs", "wait", "42")
    assert (r.returncode, r.stderr.strip()) == (2, "error: no job 42")


def test_a_parameter_with_one_bound_shows_its_range() -> None:
    # `processings show` of a parameter with `min = 0` and no max raised
    # "Unknown format code 'g' for object of type 'str'" (bench-lines' rate).
    from picsellia_tui.cli.readcmds import _range

    assert (_range(0.0, None), _range(None, 5.0), _range(1.0, 1e6), _range(None, None)) == (
        "0..",
        "..5",
        "1..1e+06",
        "-",
    )


def test_engine_serve_takes_the_socket_over_when_the_background_engine_leaves(
    ws: Workspace,
) -> None:
    """`engine serve` (say under systemd) started while a background engine
    serves: it takes the socket once that one leaves, and commands then use it
    instead of starting another background engine."""
    r = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=1")
    assert r.returncode == 0, r.stderr
    (background,) = ws.background_engines()
    server, banner = ws.serve()
    assert "through" not in banner, banner
    assert server.stderr is not None
    assert "takes it over when it leaves" in server.stderr.readline()
    os.kill(background, signal.SIGTERM)
    assert "through" in server.stderr.readline()
    r = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=1", "--wait")
    assert r.returncode == 0, r.stderr
    assert ws.background_engines() == []  # the command used `engine serve`
    log = (ws.tmp / "data" / "engine.log").read_text()
    assert log.count(" serving ") == 1, log
