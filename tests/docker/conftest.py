"""Fixtures for the docker executor tests (real dockerd; remote host through sshd).

- `echo_image`: the image of tests/fixtures/processing_echo, built once per session.
- `executor`: a DockerExecutor on the local daemon; containers it makes carry this
  session's engine id and are removed at the end of the session (label teardown).
- `sshd_host`: Debian's openssh-server on a loopback port, with a host key and a client
  key made for the test. OpenSSH reads its config from the passwd home, not $HOME, so
  instead of touching ~/.ssh the fixture writes an ssh config + known_hosts in a temp
  dir and a tiny `ssh` wrapper (`exec /usr/bin/ssh -F <config> "$@"`) that tests put
  first on PATH (`ssh_path`): `ssh://root@127.0.0.1:PORT` then reaches this machine's
  dockerd through `docker system dial-stdio`, like a remote host.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from picsellia_tui.engine.executors.base import InputFile, Limits, RunSpec
from picsellia_tui.engine.executors.docker_executor import LABEL_ENGINE, DockerExecutor
from picsellia_tui.engine.hosts import HostConfig

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ECHO_DIR = FIXTURES / "processing_echo"
ECHO_TAG = "picsellia-tui-test/echo:0.1.0"
SESSION = uuid.uuid4().hex[:8]
ENGINE_ID = f"test-{SESSION}"
REQUIRE_DOCKER = os.environ.get("PICSELLIA_REQUIRE_DOCKER") == "1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def engine_id() -> str:
    """The engine id of this test session: every container made here carries it."""
    return ENGINE_ID


@pytest.fixture(scope="session")
def echo_image(docker_client: Any) -> str:
    from picsellia_tui.engine.images import build_image

    lines: list[str] = []
    return build_image(docker_client, ECHO_DIR, "Dockerfile", ECHO_TAG, lines.append)


@pytest.fixture(scope="session")
def container_teardown(docker_client: Any) -> Iterator[None]:
    yield
    for c in docker_client.containers.list(
        all=True, filters={"label": f"{LABEL_ENGINE}={ENGINE_ID}"}
    ):
        with contextlib.suppress(Exception):
            c.remove(force=True, v=True)


@pytest.fixture
async def executor(docker_client: Any, echo_image: str, container_teardown: None) -> Any:
    ex = DockerExecutor(HostConfig(), ENGINE_ID, exit_grace_s=1.0, poll_s=0.3)
    yield ex
    await ex.aclose()


SpecFactory = Callable[..., RunSpec]


@pytest.fixture
def make_spec(echo_image: str, tmp_path: Path) -> SpecFactory:
    """make_spec(params, inputs={"a.bin": b"..."}, limits=Limits(), image=...)"""

    def make(
        params: dict[str, Any] | None = None,
        *,
        inputs: dict[str, bytes] | None = None,
        limits: Limits | None = None,
        image: str | None = None,
        env: dict[str, str] | None = None,
    ) -> RunSpec:
        run_id = uuid.uuid4().hex
        files: list[InputFile] = []
        for i, (rel, data) in enumerate((inputs or {}).items()):
            src = tmp_path / f"blob-{i}"
            src.write_bytes(data)
            files.append(InputFile(rel, src))
        ctx = {
            "job_id": "job-" + run_id[:6],
            "run_id": run_id,
            "attempt": 1,
            "parameters": params or {},
            "paths": {"inputs": "/picsellia/inputs", "outputs": "/picsellia/outputs"},
        }
        return RunSpec(
            run_id=run_id,
            job_id="job-" + run_id[:6],
            attempt=1,
            name=f"ptui-test-{run_id[:12]}",
            image=image or echo_image,
            command=["python", "main.py"],
            env={"run_id": run_id, "job_id": "job-" + run_id[:6], **(env or {})},
            context_json=json.dumps(ctx).encode(),
            inputs=files,
            labels={"picsellia-tui.test-session": SESSION},
            limits=limits or Limits(),
        )

    return make


# ---------------------------------------------------------------------------------- sshd


@dataclass(frozen=True)
class SSHD:
    url: str
    port: int
    bin_dir: Path  # PATH entry whose `ssh` knows the host key and the client key
    bin_dir_unknown_key: Path  # same key, but an empty known_hosts
    user: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _problem(reason: str) -> None:
    if REQUIRE_DOCKER:
        pytest.fail(reason)
    pytest.skip(reason)


def _find_sshd() -> str | None:
    for cand in (shutil.which("sshd"), "/usr/sbin/sshd"):
        if cand and os.path.exists(cand):
            return cand
    return None


def _install_sshd() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "openssh-server"]
    if subprocess.run(cmd, env=env, capture_output=True, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=900)
        subprocess.run(cmd, env=env, capture_output=True, timeout=900)


def _write_wrapper(bin_dir: Path, config: Path) -> None:
    bin_dir.mkdir()
    ssh = shutil.which("ssh") or "/usr/bin/ssh"
    wrapper = bin_dir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {ssh} -F {config} "$@"\n')
    wrapper.chmod(0o755)


@pytest.fixture(scope="session")
def sshd_host(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHD]:
    if not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        _problem("no ssh client here (apt-get install openssh-client)")
    sshd = _find_sshd()
    if sshd is None:
        if os.geteuid() != 0:
            _problem("openssh-server is not installed and we are not root to install it")
        _install_sshd()
        sshd = _find_sshd()
        if sshd is None:
            _problem("could not install openssh-server with apt-get")
    assert sshd is not None
    if shutil.which("docker") is None:
        _problem("the docker CLI is needed on the 'remote' side (docker system dial-stdio)")

    d = tmp_path_factory.mktemp("sshd")
    d.chmod(0o700)
    for key in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True
        )
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    port = _free_port()
    user = getpass.getuser()
    root = os.geteuid() == 0
    if root:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    (d / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {d / 'host_key'}",
                f"PidFile {d / 'sshd.pid'}",
                f"AuthorizedKeysFile {d / 'authorized_keys'}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "UsePAM no",
                "StrictModes no",
                f"AllowUsers {user}",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    host_pub = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    (d / "empty_known_hosts").write_text("")
    for name, known in (("ssh_config", "known_hosts"), ("ssh_config_unknown", "empty_known_hosts")):
        (d / name).write_text(
            "\n".join(
                [
                    "Host 127.0.0.1",
                    f"  IdentityFile {d / 'client_key'}",
                    "  IdentitiesOnly yes",
                    f"  UserKnownHostsFile {d / known}",
                    "  GlobalKnownHostsFile /dev/null",
                    "  ControlMaster no",
                    "  LogLevel ERROR",
                    "",
                ]
            )
        )
    _write_wrapper(d / "bin", d / "ssh_config")
    _write_wrapper(d / "bin_unknown", d / "ssh_config_unknown")

    log = (d / "sshd.log").open("wb")
    proc = subprocess.Popen(
        [sshd, "-D", "-e", "-f", str(d / "sshd_config")],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                _problem(f"sshd exited: {(d / 'sshd.log').read_text()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    _problem("sshd did not start listening")
                time.sleep(0.1)
        yield SSHD(
            url=f"ssh://{user}@127.0.0.1:{port}",
            port=port,
            bin_dir=d / "bin",
            bin_dir_unknown_key=d / "bin_unknown",
            user=user,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


@pytest.fixture
def ssh_path(sshd_host: SSHD, monkeypatch: pytest.MonkeyPatch) -> SSHD:
    """Put the test's ssh wrapper first on PATH for this test."""
    monkeypatch.setenv("PATH", f"{sshd_host.bin_dir}{os.pathsep}{os.environ['PATH']}")
    return sshd_host


# ----------------------------------------------------------------------------- tls


@dataclass(frozen=True)
class TLSProxy:
    url: str
    ca: Path
    cert: Path
    key: Path
    other_ca: Path  # a CA that did not sign the server certificate

    def host(self, **kw: Any) -> HostConfig:
        values: dict[str, Any] = {"tls_ca": self.ca, "tls_cert": self.cert, "tls_key": self.key}
        values.update(kw)
        return HostConfig(name="loopback-tls", url=self.url, **values)


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def _make_pki(d: Path) -> None:
    for ca in ("ca", "other-ca"):
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", f"{ca}-key.pem", "-out", f"{ca}.pem", "-subj", f"/CN=test {ca}",
            cwd=d,
        )  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem",
            "-out", f"{name}.csr", "-subj", f"/CN={name}",
            cwd=d,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
            "-CAcreateserial", "-days", "2", "-out", f"{name}-cert.pem",
            "-extfile", f"{name}.ext",
            cwd=d,
        )  # fmt: skip


def _pump(tls_sock: ssl.SSLSocket, plain: socket.socket) -> None:
    """Shuttle bytes both ways in ONE thread (an SSL object is not thread-safe)."""
    try:
        while True:
            ready = (
                [tls_sock]
                if tls_sock.pending()
                else select.select([tls_sock, plain], [], [], 300)[0]
            )
            if not ready:
                return
            for s in ready:
                try:
                    data = s.recv(65536)
                except ssl.SSLWantReadError:
                    continue
                if not data:
                    return
                (plain if s is tls_sock else tls_sock).sendall(data)
    except OSError:
        return
    finally:
        for s in (tls_sock, plain):
            with contextlib.suppress(OSError):
                s.close()


@pytest.fixture(scope="session")
def tls_proxy(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSProxy]:
    """tcp://127.0.0.1:PORT with TLS and client certificates, in front of the local socket."""
    if shutil.which("openssl") is None:
        _problem("no openssl CLI to make test certificates")
    sock_path = "/var/run/docker.sock"
    if not os.path.exists(sock_path):
        _problem(f"{sock_path} not found: the TLS proxy forwards to it")
    d = tmp_path_factory.mktemp("tls")
    _make_pki(d)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(d / "ca.pem"))
    ctx.load_cert_chain(str(d / "server-cert.pem"), str(d / "server-key.pem"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = int(listener.getsockname()[1])
    stop = threading.Event()

    def serve_one(conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            tls_sock = ctx.wrap_socket(conn, server_side=True)
            tls_sock.settimeout(None)
        except (OSError, ssl.SSLError):
            conn.close()
            return
        plain = socket.socket(socket.AF_UNIX)
        plain.connect(sock_path)
        _pump(tls_sock, plain)

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True, name="tls-proxy").start()
    try:
        yield TLSProxy(
            url=f"tcp://127.0.0.1:{port}",
            ca=d / "ca.pem",
            cert=d / "client-cert.pem",
            key=d / "client-key.pem",
            other_ca=d / "other-ca.pem",
        )
    finally:
        stop.set()
        listener.close()


@pytest.fixture(params=["local", "ssh", "tls"])
async def any_executor(
    request: pytest.FixtureRequest, docker_client: Any, echo_image: str, container_teardown: None
) -> Any:
    """The same tests against the local socket, ssh://root@127.0.0.1:PORT and
    tcp://127.0.0.1:PORT with TLS client certificates."""
    if request.param == "local":
        host = HostConfig()
    elif request.param == "ssh":
        sshd: SSHD = request.getfixturevalue("ssh_path")
        host = HostConfig(name="loopback-ssh", url=sshd.url)
    else:
        proxy: TLSProxy = request.getfixturevalue("tls_proxy")
        host = proxy.host()
    ex = DockerExecutor(host, ENGINE_ID, exit_grace_s=1.0, poll_s=0.3)
    yield ex
    await ex.aclose()
