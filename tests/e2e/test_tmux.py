"""The real `picsellia-tui` in a real terminal (tmux), keys only; then the same
through an SSH session against an sshd started on loopback.

The workspace is the demo one (`picsellia-tui demo`: real digit models) with the
process executor, plus a private processing (the test one, which can sleep so a
run stays active long enough to watch its log grow). Every step polls the tmux
screen (`capture-pane -p`); the screens seen are written to
`<tmp>/screens-*.txt` and printed on failure.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXE = Path(sys.executable).parent / "picsellia-tui"
FIXTURE = ROOT / "tests" / "fixtures" / "proc_copy"
WIDTH, HEIGHT = 120, 36


def _run(*cmd: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], check=True, capture_output=True, text=True, timeout=300, **kw
    )


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo workspace, prepared once: digits models + the private test processing."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    base = tmp_path_factory.mktemp("demo")
    data = base / "data"
    _run(EXE, "--data-dir", data, "--executor", "process", "demo", "--no-open")
    proc = base / "test-copy"
    shutil.copytree(FIXTURE, proc)
    cfg = write_config(base, data)
    _run(EXE, "--config", cfg, "processings", "create", proc)
    return data


def write_config(where: Path, data: Path) -> Path:
    cfg = where / "config.toml"
    cfg.write_text(
        'organization = "demo"\n'
        f'data_dir = "{data}"\n'
        'executor = "process"\n'
        "heartbeat_seconds = 1.0\n"
    )
    return cfg


@pytest.fixture
def workspace_cfg(demo_template: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(demo_template, data)
    return write_config(tmp_path, data)


class Tmux:
    """One tmux server on its own socket: nothing else of the machine is touched."""

    def __init__(self, log: Path) -> None:
        self.socket = f"ptui-e2e-{os.getpid()}-{time.monotonic_ns()}"
        self.log = log
        self.screens: list[str] = []

    def tmux(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
            # os.environ, not the C environment: readline (imported by pytest) sets
            # COLUMNS=80 LINES=24 there, and a program that sees them believes them.
            env=dict(os.environ),
        )
        return out.stdout

    def start(self, command: str) -> None:
        # The window gets its size first, then the program starts in it: a pane
        # created at tmux's default 80x24 and resized a moment later could be read
        # at the wrong size by a program starting in between.
        self.tmux(
            "-u",
            "new-session",
            "-d",
            "-s",
            "app",
            "-x",
            str(WIDTH),
            "-y",
            str(HEIGHT),
            "sleep 3600",
        )
        self.tmux("set-option", "-t", "app", "remain-on-exit", "on")
        self.tmux("set-option", "-g", "window-size", "manual")
        self.tmux("resize-window", "-t", "app", "-x", str(WIDTH), "-y", str(HEIGHT))
        size = self.tmux("display", "-p", "-t", "app", "#{window_width}x#{window_height}")
        assert size.strip() == f"{WIDTH}x{HEIGHT}", size
        env = "env -u COLUMNS -u LINES LANG=C.UTF-8 LC_ALL=C.UTF-8 "
        self.tmux("respawn-pane", "-k", "-t", "app", env + command)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", "app", key)
            time.sleep(0.15)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "app")

    def wait(self, what: str, check: Callable[[str], bool], timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if check(text):
                self.record(what, text)
                return text
            time.sleep(0.1)
        self.record(f"TIMED OUT: {what}", text)
        raise AssertionError(f"timed out waiting for: {what}\n{text}")

    def record(self, what: str, text: str) -> None:
        self.screens.append(f"==== {what}\n{text}")
        self.log.write_text("\n".join(self.screens))

    def close(self) -> None:
        path = ""
        try:
            path = self.tmux("display", "-p", "#{socket_path}").strip()
            self.tmux("kill-server")
        except subprocess.CalledProcessError:
            pass
        if path:
            Path(path).unlink(missing_ok=True)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path / f"screens-{os.getpid()}.txt")
    yield t
    t.close()
    print(f"\nscreens seen: {t.log}")


def has(*parts: str) -> Callable[[str], bool]:
    return lambda text: all(p in text for p in parts)


def drive_launch_and_rerun(t: Tmux) -> None:
    """Keys only: launch test-copy (sleep 6) on digits-mlp/v1, watch its log grow
    while it runs, see it succeed, re-run it (r) and see attempt 2."""
    t.wait("the app is up on the Processings tab", has("1 Processings", "test-copy", "private"))
    t.keys("2")
    t.wait("ModelVersions tab", has("digits-mlp/v1", "digits-cnn/v1", "accuracy"))
    t.keys("Down", "l")
    t.wait("launch modal on the version", has("Launch on digits-mlp/v1", "processing:"))
    t.keys("End")  # the last compatible processing: the private test-copy
    t.wait("test-copy's form", has("test-copy 1.0.0  on  digits-mlp/v1", "Seconds to sleep"))
    t.keys("Enter")  # into the form: `lines`
    t.keys("Tab", "6")  # `sleep` = 6 seconds (a field selects its text when focused)
    t.wait("sleep set", lambda s: re.search(r"sleep\s+6\b", s) is not None)
    t.keys("Enter")  # launch
    t.wait(
        "Jobs tab: job 1 running, its log lines already there",
        has("job 1 ● running", "starting job 1 run 1 attempt 1", "line 2", "to stderr"),
    )
    t.wait("job 1 succeeded", has("job 1 ✓ succeeded", "done", "● 0 running"), timeout=40)
    t.keys("r")
    t.wait("re-run confirmation", has("Re-run job 1?", "run #2"))
    t.keys("y")
    t.wait(
        "attempt 2 running, its log in the pane",
        lambda s: "#2" in s and "starting job 1 run 2 attempt 2" in s and "running" in s,
    )
    final = t.wait(
        "attempt 2 succeeded",
        lambda s: re.search(r"#2\s+✓ succeeded", s) is not None and "job 1 ✓ succeeded" in s,
        timeout=40,
    )
    assert re.search(r"#1\s+✓ succeeded", final)
    # The jobs list and the header's counts follow on their own refresh (a fraction of
    # a second after the detail under load): they must agree, not in the same frame.
    t.wait(
        "the jobs list and the header agree",
        lambda s: (
            re.search(r"\b1\s+✓ succeeded\s+2\s+test-copy\s+digits-mlp/v1", s) is not None
            and "● 0 running" in s
        ),
        timeout=15,
    )
    t.keys("q")
    t.wait("the app quit", lambda s: "Pane is dead" in s or "picsellia-tui" not in s, timeout=20)


def test_tmux_launch_live_log_and_rerun(workspace_cfg: Path, tmux: Tmux) -> None:
    tmux.start(f"{EXE} --config {workspace_cfg}")
    drive_launch_and_rerun(tmux)


# -- the same over SSH -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sshd_binary() -> str:
    sshd = "/usr/sbin/sshd"
    if Path(sshd).exists():
        return sshd
    if os.geteuid() != 0:
        pytest.skip("no /usr/sbin/sshd and not root: cannot install openssh-server")
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "openssh-server", "openssh-client"],
            check=True,
            capture_output=True,
            timeout=300,
            env=env,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"could not install openssh-server: {exc}")
    return sshd


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    """sshd on a loopback port, with a host key and a client key made for the test.
    Yields (port, client key, known_hosts)."""
    if os.geteuid() != 0:
        pytest.skip("the SSH test logs in as root on loopback: run it as root")
    binary = _sshd_binary()
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("ssh client tools are missing")
    d = tmp_path / "ssh"
    d.mkdir(mode=0o700)
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", d / "host_key")
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", d / "client_key")
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    port = _free_port()
    host_pub = (d / "host_key.pub").read_text().split()[:2]
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host_pub)}\n")
    (d / "sshd_config").write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {d / 'host_key'}\n"
        f"PidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "PrintMotd no\n"
        "AcceptEnv LANG LC_*\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    proc = subprocess.Popen(
        [binary, "-D", "-e", "-f", str(d / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=(d / "sshd.log").open("w"),
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"sshd did not start: {(d / 'sshd.log').read_text()}"
                    ) from None
                time.sleep(0.1)
        yield port, d / "client_key", d / "known_hosts"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_ssh_launch_live_log_and_rerun(
    workspace_cfg: Path, tmux: Tmux, sshd: tuple[int, Path, Path]
) -> None:
    port, key, known = sshd
    ssh = (
        f"ssh -p {port} -i {key} -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes "
        "-o IdentitiesOnly=yes -o BatchMode=yes -t root@127.0.0.1"
    )
    remote = f"env LANG=C.UTF-8 LC_ALL=C.UTF-8 {EXE} --config {workspace_cfg}"
    # The login itself is checked first: a failure says so instead of timing out later.
    check = subprocess.run(
        [*ssh.replace(" -t ", " ").split(), "echo", "ssh-ok"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.stdout.strip() == "ssh-ok", check.stderr
    tmux.start(f"{ssh} '{remote}'")
    drive_launch_and_rerun(tmux)
