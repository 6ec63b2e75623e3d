"""Commands hand their launches to a running engine through its control socket."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from picsellia_tui.engine.config import load_settings
from picsellia_tui.engine.control_client import (
    Unavailable,
    request,
    socket_path,
)
from tests.core.helpers import FIXTURES, model_file

EXE = Path(sys.executable).with_name("picsellia-tui")
# pydantic is not in the list: typer itself imports it.
HEAVY = ("sqlalchemy", "sqlmodel", "docker", "textual", "pydantic_settings", "anyio")


class Workspace:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        # Socket paths are limited to 107 bytes: pytest's tmp_path can be longer.
        self.run_dir = Path(tempfile.mkdtemp(prefix="pt-run-"))
        (tmp / "procs").mkdir()
        shutil.copytree(FIXTURES / "proc_copy", tmp / "procs" / "test-copy")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PICSELLIA_TUI_")}
        self.env.update(
            PICSELLIA_TUI_DATA_DIR=str(tmp / "data"),
            PICSELLIA_TUI_EXECUTOR="process",
            PICSELLIA_TUI_PROCESSINGS_DIR=str(tmp / "procs"),
            XDG_RUNTIME_DIR=str(self.run_dir),
            PICSELLIA_TUI_ENGINE_IDLE_SECONDS="5",
        )
        self.servers: list[subprocess.Popen[str]] = []

    @property
    def database(self) -> Path:
        return self.tmp / "data" / "picsellia.db"

    def cli(self, *args: str, importtime: bool = False) -> subprocess.CompletedProcess[str]:
        cmd = [str(EXE), *args]
        if importtime:
            code = f"import sys; sys.argv = {['picsellia-tui', *args]!r}; "
            code += "from picsellia_tui.entry import main; main()"
            cmd = [sys.executable, "-X", "importtime", "-c", code]
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=120)

    def serve(self) -> tuple[subprocess.Popen[str], str]:
        p = subprocess.Popen(
            [str(EXE), "engine", "serve"],
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        self.servers.append(p)
        assert p.stderr is not None
        return p, p.stderr.readline()

    def background_engines(self) -> list[int]:
        """Pids of the background engines started on this workspace, still alive."""
        log = self.tmp / "data" / "engine.log"
        if not log.exists():
            return []
        pids = [int(p) for p in re.findall(r"engine [^:\s]+:(\d+):\w+ serving", log.read_text())]
        return [p for p in pids if _alive(p)]

    def close(self) -> None:
        for p in self.servers:
            if p.poll() is None:
                p.terminate()
                p.wait(30)
        for pid in self.background_engines():
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while self.background_engines() and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    """A live process (not a zombie) with this pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    w = Workspace(tmp_path)
    for k, v in w.env.items():
        monkeypatch.setenv(k, v)
    r = w.cli("models", "import", "m/v1", str(model_file(tmp_path)), "--framework", "onnx")
    assert r.returncode == 0, r.stderr
    yield w
    w.close()


def heavy_imports(stderr: str) -> set[str]:
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and line.rsplit("|", 1)[1].strip() in HEAVY
    }


def test_a_command_with_other_settings_is_not_served(ws: Workspace) -> None:
    """Issue 16 item 14: `PICSELLIA_TUI_OUTPUT_QUOTA=1k launch ... --wait` succeeded
    through `engine serve` (which has no such quota) and was refused without it."""
    ws.serve()
    env = dict(ws.env, PICSELLIA_TUI_OUTPUT_QUOTA="1")  # one byte: any output is over
    r = subprocess.run(
        [str(EXE), "launch", "test-copy", "m/v1", "-p", "lines=1", "-p", "token=hunter22",
         "--wait"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "quota" in r.stdout + r.stderr
    same = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=1", "-p", "token=hunter22", "--wait")
    assert same.returncode == 0, same.stderr  # the same settings: served as before


def test_launch_wait_goes_through_the_running_engine(ws: Workspace) -> None:
    server, banner = ws.serve()
    assert "commands hand it their launches through" in banner, banner
    sock = socket_path(ws.database)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700

    r = ws.cli(
        "launch",
        "test-copy",
        "m/v1",
        "-p",
        "lines=3",
        "-p",
        "token=hunter22",
        "--wait",
        importtime=True,
    )
    assert r.returncode == 0, r.stderr
    # Nothing heavy imported: the command did not start an engine of its own.
    assert heavy_imports(r.stderr) == set()
    assert r.stdout.splitlines()[:5] == [
        "starting job 1 run 1 attempt 1",
        "using token ••••••",
        "line 0",
        "line 1",
        "line 2",
    ]
    assert r.stdout.splitlines()[-1].startswith("job 1 run #1: succeeded in ")
    assert "job 1: test-copy on m/v1 -> v1-copy" in r.stderr
    assert "hunter22" not in r.stdout + r.stderr

    r = ws.cli("launch", "test-copy", "m/v1", "-p", "fail=true", "--wait")
    assert r.returncode == 1
    assert "RuntimeError: asked to fail" in r.stdout + r.stderr

    r = ws.cli("launch", "nope", "m/v1", importtime=True)
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if not line.startswith("import time:")]
    assert errors == ["error: no processing named 'nope' (see: picsellia-tui processings list)"]
    assert heavy_imports(r.stderr) == set()

    r = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=zz")
    assert (r.returncode, r.stderr.strip()) == (
        2,
        "error: parameter 'lines': 'zz' is not an integer",
    )

    r = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=1", "--json", "--wait")
    assert r.returncode == 0, r.stderr
    job = json.loads(r.stdout)
    assert job["id"] == 3 and job["processing"] == "test-copy"
    assert "hunter22" not in r.stdout

    # The served launches are the same jobs any other command sees.
    r = ws.cli("jobs", "list", "--json")
    assert [j["status"] for j in json.loads(r.stdout)] == ["succeeded", "failed", "succeeded"]
    assert server.poll() is None


def test_without_a_running_engine_the_command_starts_one_in_the_background(
    ws: Workspace,
) -> None:
    r = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=1", "--wait", importtime=True)
    assert r.returncode == 0, r.stderr
    assert heavy_imports(r.stderr) == set()  # the engine runs in its own process
    assert "line 0" in r.stdout
    assert len(ws.background_engines()) == 1
    sock = socket_path(ws.database)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((ws.tmp / "data" / "engine.log").stat().st_mode) == 0o600


def test_a_dead_engines_socket_is_not_trusted_and_is_replaced(ws: Workspace) -> None:
    server, banner = ws.serve()
    assert "through" in banner
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    assert socket_path(ws.database).exists()  # left behind
    r = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=1", "--wait", importtime=True)
    assert r.returncode == 0 and heavy_imports(r.stderr) == set()
    # The command started a background engine on the stale socket's place.
    assert len(ws.background_engines()) == 1


def test_one_engine_serves_the_socket(ws: Workspace) -> None:
    _, first = ws.serve()
    _, second = ws.serve()
    assert "through" in first and "through" not in second
    r = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=1", "--wait")
    assert r.returncode == 0, r.stderr


def test_interrupting_the_command_leaves_the_run_going(ws: Workspace) -> None:
    ws.serve()
    p = subprocess.Popen(
        [str(EXE), "launch", "test-copy", "m/v1", "-p", "lines=2", "-p", "sleep=2", "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ws.env,
    )
    assert p.stdout is not None
    assert p.stdout.readline().startswith("starting job 1")
    p.send_signal(signal.SIGINT)
    assert p.wait(30) == 130
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = ws.cli("jobs", "list", "--json")
        if json.loads(r.stdout)[0]["status"] == "succeeded":
            break
        time.sleep(0.5)
    else:
        pytest.fail("the run did not finish after its command was interrupted")


def test_a_server_with_other_settings_is_not_used(ws: Workspace) -> None:
    ws.serve()
    with pytest.raises(Unavailable, match="this engine serves"):
        next(request(ws.database, "docker", "launch"))
    with pytest.raises(Unavailable):
        next(request(ws.tmp / "other.db", "process", "launch"))


def test_malformed_requests_are_refused_and_the_engine_keeps_serving(ws: Workspace) -> None:
    import socket as socketlib

    server, _ = ws.serve()
    path = str(socket_path(ws.database))
    for payload in (b"not json\n", b"[1, 2]\n", b"\xff\xfe\n", b"x" * (2 * 2**20)):
        with socketlib.socket(socketlib.AF_UNIX) as s:
            s.connect(path)
            s.settimeout(10)
            try:
                s.sendall(payload)
            except OSError:
                pass  # the engine may close on an oversized request before reading it all
            answer = s.makefile("rb").readline()
            assert json.loads(answer)["message"] == "malformed request"
    with socketlib.socket(socketlib.AF_UNIX) as s:  # a client that says nothing and goes
        s.connect(path)
    assert server.poll() is None
    r = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=1", "--wait", importtime=True)
    assert r.returncode == 0 and heavy_imports(r.stderr) == set()


def test_the_apps_engine_serves_commands_too(ws: Workspace) -> None:
    from picsellia_tui.engine.embedded import EngineHandle

    handle = EngineHandle(load_settings())  # what the app runs, same workspace
    handle.start()
    try:
        assert socket_path(ws.database).exists()
        r = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=2", "--wait", importtime=True)
        assert r.returncode == 0, r.stderr
        assert heavy_imports(r.stderr) == set()
        assert "line 1" in r.stdout
    finally:
        handle.stop()
    assert not socket_path(ws.database).exists()


def test_rerun_and_cancel_go_through_the_running_engine(ws: Workspace) -> None:
    ws.serve()
    r = ws.cli("launch", "test-copy", "m/v1", "-p", "lines=2", "--wait")
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"job 1 run #1: succeeded in \S+ \(exit 0\)", r.stdout.splitlines()[-1])

    r = ws.cli("jobs", "rerun", "1", "--wait", importtime=True)
    assert r.returncode == 0, r.stderr
    assert heavy_imports(r.stderr) == set()
    assert "job 1: run #2 queued" in r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "starting job 1 run 2 attempt 2" and "line 1" in out
    # the same final line as launch --wait
    assert re.fullmatch(r"job 1 run #2: succeeded in \S+ \(exit 0\)", out[-1]), out[-1]

    r = ws.cli("launch", "test-copy", "m/v1", "-p", "sleep=60")
    assert r.returncode == 0, r.stderr
    r = ws.cli("jobs", "rerun", "2")
    assert r.returncode == 1
    assert r.stderr.strip().startswith("error: ") and len(r.stderr.strip().splitlines()) == 1

    r = ws.cli("jobs", "cancel", "2", "--json", importtime=True)
    assert r.returncode == 0, r.stderr
    assert heavy_imports(r.stderr) == set()
    run = json.loads(r.stdout[r.stdout.index("{") :])
    assert run["status"] == "killed" and run["duration_s"] is not None
