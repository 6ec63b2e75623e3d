"""Another local account against the workspace (issue 16, items 1-3): paths the
tool did not create are never chmod'ed (refused or warned about instead), the
control socket is trusted only when its folder and its listener are this user's,
and the crash log is never written through a symlink someone planted.

The other account is real: a process running as ATTACKER_UID (no passwd entry
needed), with the system's own Python. These tests need root to make it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from picsellia_tui.engine.control_client import socket_path
from tests.reliability.helpers import (
    SECRET,
    Tally,
    cli_env,
    config_file,
    make_settings,
    message_problem,
    model_file,
    run_cli,
)

AREA = "security"
ATTACKER_UID = 54321
SYSTEM_PYTHON = "/usr/bin/python3"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")

# A listener as the other user would write it: it makes the socket folder the
# victim's client looks for (0777, as the attacker of the issue did), listens
# under the engine's socket name and writes down every byte it is sent.
LISTENER = r"""
import os, socket, sys
folder, name, got = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(folder, exist_ok=True)
os.chmod(folder, 0o777)
path = os.path.join(folder, name)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o777)
s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.settimeout(5)
    data = b""
    try:
        while chunk := c.recv(65536):
            data += chunk
            if b"\n" in data:
                break
    except OSError:
        pass
    with open(got, "ab") as f:
        f.write(b"CONNECTED " + data + b"\n")
    c.sendall(b'{"event": "error", "message": "attacker says hi", "code": 0}\n')
    c.close()
"""


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A /tmp-like folder (1777) both users can use: the victim's TMPDIR."""
    d = Path(tempfile.mkdtemp(prefix="rel-shared-"))
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _as_attacker(args: list[str], **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [SYSTEM_PYTHON, *args],
        user=ATTACKER_UID,
        group=ATTACKER_UID,
        extra_groups=[],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


@contextlib.contextmanager
def _listener(folder: Path, name: str, shared: Path) -> Iterator[Path]:
    """The other user listening at folder/name while the block runs; yields the
    file it writes every byte it receives to."""
    got = shared / "got"
    got.touch()
    os.chmod(got, 0o666)
    p = _as_attacker(["-c", LISTENER, str(folder), name, str(got)])
    try:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.strip() == "ready", p.stderr.read() if p.stderr else line
        yield got
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)


def _succeeded(out: subprocess.CompletedProcess[str]) -> bool:
    return out.returncode == 0 and "succeeded" in out.stdout


def _socket_lines(out: subprocess.CompletedProcess[str]) -> list[str]:
    """What the command said about the control socket."""
    return [ln for ln in out.stderr.splitlines() if "socket" in ln]


def _launch_with_secret(cfg: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(
        ["--config", str(cfg), "launch", "rel-probe", "m/v1", "-p", f"token={SECRET}", "--wait"],
        env=env,
    )


def _victim_env(shared: Path) -> dict[str, str]:
    env = cli_env()
    env.pop("XDG_RUNTIME_DIR", None)  # the runtime dir falls back to $TMPDIR
    env["TMPDIR"] = str(shared)
    return env


def _workspace(tmp_path: Path, env: dict[str, str]) -> tuple[Path, Path]:
    s = make_settings(tmp_path)
    cfg = config_file(s, tmp_path / "config.toml")
    out = run_cli(
        ["--config", str(cfg), "models", "import", "m/v1", str(model_file(tmp_path))], env=env
    )
    assert out.returncode == 0, out.stderr
    return cfg, s.database_path


# ------------------------------------------------------------------ the socket


@needs_root
def test_a_socket_folder_made_by_another_user_gets_nothing(
    tmp_path: Path, shared_tmp: Path, tally: Tally
) -> None:
    """Item 2: the other user made $TMPDIR/picsellia-tui-UID (0777) and listens
    there. The launch runs on an engine of the command's own, says so in one
    line, and the listener receives nothing, the secret least of all."""
    env = _victim_env(shared_tmp)
    cfg, db = _workspace(tmp_path, env)
    folder = shared_tmp / f"picsellia-tui-{os.getuid()}"
    with _listener(folder, _sock_name(db, shared_tmp), shared_tmp) as got:
        out = _launch_with_secret(cfg, env)
    received = got.read_bytes()
    warning = _socket_lines(out)
    ok = (
        _succeeded(out)
        and received == b""
        and len(warning) == 1
        and "belongs to uid 54321" in warning[0]
        and message_problem(warning[0]) is None
    )
    tally.bad(AREA, ok, f"socket folder of another uid: rc {out.returncode}, got {received[:80]!r}",
              klass="socket spoofing by another uid")  # fmt: skip
    assert SECRET.encode() not in received
    assert ok, (out.returncode, out.stdout, out.stderr, received)


@needs_root
def test_a_listener_of_another_uid_in_our_own_folder_gets_nothing(
    tmp_path: Path, shared_tmp: Path, tally: Tally
) -> None:
    """Item 2, the peer check: the folder is ours and private, but the socket in
    it is served by another uid (a socket file keeps its listener when moved).
    The client looks at the peer's credentials and sends nothing."""
    env = _victim_env(shared_tmp)
    cfg, db = _workspace(tmp_path, env)
    ours = shared_tmp / f"picsellia-tui-{os.getuid()}"
    ours.mkdir(mode=0o700)
    theirs = shared_tmp / "theirs"
    name = _sock_name(db, shared_tmp)
    with _listener(theirs, name, shared_tmp) as got:
        os.rename(theirs / name, ours / name)
        out = _launch_with_secret(cfg, env)
    received = got.read_bytes()
    warning = _socket_lines(out)
    ok = (
        _succeeded(out)
        and SECRET.encode() not in received
        and b"launch" not in received
        and len(warning) == 1
        and "served by uid 54321" in warning[0]
    )
    tally.bad(AREA, ok, f"socket served by another uid: rc {out.returncode}, got {received[:80]!r}",
              klass="socket spoofing by another uid")  # fmt: skip
    assert ok, (out.returncode, out.stdout, out.stderr, received)


def _sock_name(db: Path, tmpdir: Path) -> str:
    old = os.environ.get("TMPDIR")
    xdg = os.environ.pop("XDG_RUNTIME_DIR", None)
    os.environ["TMPDIR"] = str(tmpdir)
    tempfile.tempdir = None
    try:
        return socket_path(db).name
    finally:
        if old is None:
            os.environ.pop("TMPDIR")
        else:
            os.environ["TMPDIR"] = old
        if xdg is not None:
            os.environ["XDG_RUNTIME_DIR"] = xdg
        tempfile.tempdir = None


CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
try:
    s.sendall(b'{"op": "launch", "database": "x", "executor": "process"}\n')
    print(repr(s.recv(65536)))
except (BrokenPipeError, ConnectionResetError):
    print("b''")  # closed on us before a byte was answered
"""


@needs_root
@pytest.mark.anyio
async def test_the_engine_refuses_a_client_of_another_uid(
    tmp_path: Path,
    shared_tmp: Path,
    tally: Tally,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Item 2, the server side: even when the modes let another uid reach the
    socket, the engine answers nothing and logs one line."""
    import anyio

    from picsellia_tui.engine.control import serve_control
    from picsellia_tui.engine.core import Engine

    s = make_settings(tmp_path)
    run_dir = Path(tempfile.mkdtemp(prefix="rel-run-", dir=shared_tmp))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run_dir))
    async with Engine(s) as e, anyio.create_task_group() as tg:
        path = await tg.start(serve_control, e)
        assert path is not None
        # The test opens the door on purpose: a too-open folder and socket.
        os.chmod(path.parent, 0o755)
        os.chmod(path, 0o777)
        os.chmod(run_dir, 0o755)
        client = _as_attacker(["-c", CLIENT, str(path)])
        stdout, stderr = await anyio.to_thread.run_sync(client.communicate)
        tg.cancel_scope.cancel()
    # The engine's log is its file (engine.log); caplog sees the record too unless an
    # earlier test in this process reconfigured logging, so either one counts, once.
    engine_log = s.data_dir / "engine.log"
    logged = engine_log.read_text().splitlines() if engine_log.exists() else []
    refused = [line for line in logged if "refused a client" in line] or [
        r.getMessage() for r in caplog.records if "refused a client" in r.getMessage()
    ]
    answered = stdout.strip()
    ok = (
        (
            answered in ("b''", "")  # closed on it
            or ("refused" in answered and "another user" in answered and "final" not in answered)
        )
        and len(refused) == 1
        and "uid 54321" in refused[0]
    )
    tally.bad(AREA, ok, f"engine answered uid 54321: {stdout.strip()[:80]!r} {stderr[-200:]!r}",
              klass="socket spoofing by another uid")  # fmt: skip
    assert ok, (stdout, stderr, refused)


# ---------------------------------------------------------------- paths not ours


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


def _cli_on(tmp_path: Path, env: dict[str, str] | None = None, **kw: Any) -> Any:
    s = make_settings(tmp_path, **kw)
    cfg = config_file(s, tmp_path / f"config-{time.monotonic_ns()}.toml")
    return run_cli(["--config", str(cfg), "processings", "list"], env=env or cli_env())


def test_existing_paths_are_never_chmoded(tmp_path: Path, tally: Tally) -> None:
    """Item 1: an existing data dir or database keeps its mode, whatever it is.
    Too open to write (1777) or not ours: one line, refused. Readable by others:
    one warning line, used as it is."""
    k = "paths not ours"
    # A world-writable sticky folder as data_dir (the issue's `open`): refused.
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o1777)
    out = _cli_on(tmp_path, data_dir=open_dir)
    ok = (out.returncode == 1 and _mode(open_dir) == 0o1777 and "writable by other users"
          in out.stderr and message_problem(out.stderr.strip()) is None
          and not (open_dir / "picsellia.db").exists())  # fmt: skip
    tally.bad(AREA, ok, f"data_dir 1777: rc {out.returncode} mode {_mode(open_dir):o}", k)
    assert ok, (out.returncode, oct(_mode(open_dir)), out.stderr)

    # A folder readable by others: used, left 0755, one warning line.
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    out = _cli_on(tmp_path, data_dir=shared)
    warn = [ln for ln in out.stderr.splitlines() if ln.strip()]
    ok = (out.returncode == 0 and _mode(shared) == 0o755 and len(warn) == 1
          and "can be read by other users" in warn[0]
          and _mode(shared / "picsellia.db") == 0o600 and _mode(shared / "logs") == 0o700)  # fmt: skip
    tally.bad(AREA, ok, f"data_dir 0755: rc {out.returncode} mode {_mode(shared):o}", k)
    assert ok, (out.returncode, oct(_mode(shared)), out.stderr)

    # An existing database file readable by others: used, left 0644, warned.
    data = tmp_path / "d2"
    data.mkdir(mode=0o700)
    db = data / "mine.db"
    db.touch()
    os.chmod(db, 0o644)
    out = _cli_on(tmp_path, data_dir=data, database=db)
    ok = out.returncode == 0 and _mode(db) == 0o644 and "can be read" in out.stderr
    tally.bad(AREA, ok, f"database 0644: rc {out.returncode} mode {_mode(db):o}", k)
    assert ok, (out.returncode, oct(_mode(db)), out.stderr)

    # A regular file as data_dir (item 15's /etc/passwd): one line, exit 1, not 70.
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0::/root:/bin/sh\n")
    os.chmod(passwd, 0o644)
    out = _cli_on(tmp_path, data_dir=passwd)
    ok = (out.returncode == 1 and "is not a folder" in out.stderr and _mode(passwd) == 0o644
          and message_problem(out.stderr.strip()) is None)  # fmt: skip
    tally.bad(AREA, ok, f"data_dir is a file: rc {out.returncode} {out.stderr[:100]!r}", k)
    assert ok, (out.returncode, out.stderr)


@needs_root
def test_paths_of_another_user_are_refused_untouched(tmp_path: Path, tally: Tally) -> None:
    """Item 1: a data dir or a database of another uid: refused, owner and mode
    as they were (as root, the old code chmod'ed /etc itself)."""
    k = "paths not ours"
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chmod(theirs, 0o750)
    os.chown(theirs, ATTACKER_UID, ATTACKER_UID)
    out = _cli_on(tmp_path, data_dir=theirs)
    st = theirs.stat()
    ok = (out.returncode == 1 and "belongs to uid 54321" in out.stderr
          and stat.S_IMODE(st.st_mode) == 0o750 and st.st_uid == ATTACKER_UID
          and not any(theirs.iterdir()))  # fmt: skip
    tally.bad(AREA, ok, f"data_dir of another uid: rc {out.returncode} {out.stderr[:100]!r}", k)
    assert ok, (out.returncode, out.stderr)

    data = tmp_path / "ours"
    data.mkdir(mode=0o700)
    db = data / "their.db"
    db.touch()
    os.chmod(db, 0o640)
    os.chown(db, ATTACKER_UID, ATTACKER_UID)
    out = _cli_on(tmp_path, data_dir=data, database=db)
    st = db.stat()
    ok = (out.returncode == 1 and "belongs to uid 54321" in out.stderr
          and stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == ATTACKER_UID)  # fmt: skip
    tally.bad(AREA, ok, f"database of another uid: rc {out.returncode} {out.stderr[:100]!r}", k)
    assert ok, (out.returncode, out.stderr)


def test_tilde_in_data_dir_is_the_home_folder(tmp_path: Path) -> None:
    """Item 15: `data_dir = "~/ws"` is under $HOME, not a folder named '~'."""
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "cwd"
    work.mkdir()
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data_dir = "~/ws"\nexecutor = "process"\nprocessings_dir = "{tmp_path}"\n')
    env = cli_env() | {"HOME": str(home)}
    out = subprocess.run(
        [str(Path(sys.executable).with_name("picsellia-tui")), "--config", str(cfg),
         "processings", "list"],
        capture_output=True, text=True, env=env, cwd=work, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (home / "ws" / "picsellia.db").is_file()
    assert not (work / "~").exists()


# ------------------------------------------------------------------ crash log


def _victim_file(tmp_path: Path) -> Path:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.chmod(victim, 0o600)
    return victim


def test_crash_log_never_follows_a_planted_symlink(
    tmp_path: Path,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Item 3: the traceback of an unexpected error goes to the user's state dir
    (0700), file 0600; a symlink planted at the old shared path or at the new
    one never gets the victim's file appended to."""
    from picsellia_tui.cli.errors import report

    k = "symlinked logs"
    shared = tmp_path / "tmp"
    shared.mkdir()
    state = tmp_path / "state"
    monkeypatch.setenv("TMPDIR", str(shared))
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    monkeypatch.setattr(tempfile, "tempdir", None)

    # The old fixed path in the shared temp folder, symlinked to a victim file.
    victim = _victim_file(tmp_path)
    (shared / "picsellia-tui-crash.log").symlink_to(victim)
    assert report(RuntimeError("boom one")) == 70
    err = capsys.readouterr().err
    log = state / "picsellia-tui" / "crash.log"
    ok = (victim.read_text() == "precious\n" and log.is_file() and _mode(log) == 0o600
          and _mode(log.parent) == 0o700 and "boom one" in log.read_text()
          and f"details in {log}" in err)  # fmt: skip
    tally.bad(AREA, ok, f"symlink at the old crash log path: {err.strip()!r}", k)
    assert ok, (victim.read_text(), err)

    # A symlink at the new path (only possible for this user, or before the
    # folder existed): not followed, the line says there is no crash log.
    log.unlink()
    log.symlink_to(victim)
    assert report(RuntimeError("boom two")) == 70
    err = capsys.readouterr().err
    ok = (victim.read_text() == "precious\n" and "no crash log" in err
          and message_problem(err.strip()) is None)  # fmt: skip
    tally.bad(AREA, ok, f"symlink at the new crash log path: {err.strip()!r}", k)
    assert ok, (victim.read_text(), err)

    # A state folder open to others: not used.
    log.unlink()
    os.chmod(log.parent, 0o777)
    assert report(RuntimeError("boom three")) == 70
    err = capsys.readouterr().err
    ok = not log.exists() and "no crash log" in err
    tally.bad(AREA, ok, f"crash log in a folder open to others: {err.strip()!r}", k)
    assert ok, err
