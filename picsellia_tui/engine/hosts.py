"""Docker hosts: where containers run, and how to reach them.

A host is `local` (the environment's Docker: `DOCKER_HOST` or the default socket), a
`unix://` socket, `ssh://user@host[:port]` (through the SYSTEM ssh client, so
`~/.ssh/config`, agents, ProxyJump, ControlMaster and `known_hosts` all apply) or
`tcp://host:port` (TLS with verification when certificates are configured).

`connect` returns a ready `docker.DockerClient`; every failure to reach a host becomes
`HostUnreachable` with one line that says what to do. `probe` is what `doctor` shows.

SSH transport: docker-py's own ssh support needs paramiko and, when shelling out,
opens a new ssh process per request and lets ssh write to our terminal. This module
ships a small transport instead: one `ssh ... docker system dial-stdio` process per
pooled HTTP connection, run with `BatchMode=yes` (never prompts: a password or an
unknown host key fails instead of hanging the TUI), stderr kept away from the
terminal, in its own session (Ctrl-C in the TUI does not kill it). Host key checking
is never weakened: an unknown key is refused with the `ssh-keyscan` line to run.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import math
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import urllib.parse
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors
import requests
import requests.exceptions
import urllib3
import urllib3.connection
import urllib3.connectionpool
from docker.tls import TLSConfig

from picsellia_tui.engine.executors.base import ExecutorError, HostRefused, HostUnreachable
from picsellia_tui.engine.executors.docker_private import (
    BaseHTTPAdapter,
    install_transport,
    set_server_version,
)
from picsellia_tui.engine.hostconfig import HostConfig

__all__ = [
    "HostConfig",
    "HostReport",
    "connect",
    "describe_error",
    "one_line",
    "probe",
    "ssh_preflight",
]

DEFAULT_TIMEOUT = 30.0
# The first answer (the daemon's version, a ping) may take this long beyond the
# host's connect_timeout: ssh authentication and the remote docker CLI starting.
FIRST_ANSWER_MARGIN_S = 5.0
_PLACEHOLDER_API = "1.41"  # replaced by the daemon's version right after construction
MAX_POOL_SIZE = 32
_SSH_SCHEME = "ssh://"


@dataclass
class HostReport:
    """What `doctor` prints about one host."""

    name: str
    url: str
    reachable: bool
    api_version: str | None = None
    server_version: str | None = None
    os: str | None = None
    arch: str | None = None
    gpu_runtime: bool = False  # an "nvidia" runtime is registered with the daemon
    runtimes: list[str] = field(default_factory=list)
    error: str | None = None


# --------------------------------------------------------------------------- errors


def one_line(text: object, limit: int = 300) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


_REASONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"FileNotFoundError|No such file or directory", re.I), "no Docker socket there"),
    (
        re.compile(r"PermissionError|Permission denied", re.I),
        "permission denied on the Docker socket (is your user in the docker group?)",
    ),
    (re.compile(r"Connection refused|ConnectionRefused", re.I), "connection refused"),
    (re.compile(r"timed out|Timeout", re.I), "timed out"),
    (
        re.compile(r"Name or service not known|nodename nor servname|NameResolution", re.I),
        "cannot resolve the host name",
    ),
    (
        re.compile(r"CERTIFICATE_VERIFY_FAILED|certificate verify failed", re.I),
        "TLS: certificate verification failed",
    ),
    (re.compile(r"SSLError|SSL", re.I), "TLS handshake failed"),
    (
        re.compile(
            r"Broken pipe|BrokenPipe|Connection reset|ConnectionReset"
            r"|RemoteDisconnected|Connection aborted",
            re.I,
        ),
        "connection lost",
    ),
]


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    for pattern, reason in _REASONS:
        if pattern.search(text):
            return reason
    return one_line(exc) or type(exc).__name__


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, docker.errors.APIError):
        return False
    return isinstance(
        exc,
        requests.exceptions.ConnectionError
        | requests.exceptions.Timeout
        | urllib3.exceptions.HTTPError
        | ConnectionError
        | TimeoutError
        | socket.error,
    ) or (isinstance(exc, docker.errors.DockerException) and "fetching server API" in str(exc))


def describe_error(exc: BaseException, host: HostConfig | str, what: str = "") -> ExecutorError:
    """Turn any exception from docker-py into one `ExecutorError` line.

    Connection problems become `HostUnreachable`; daemon answers keep the daemon's own
    explanation. `what` names the operation ("start run-3f2a", "pull python:3.11").
    """
    if isinstance(exc, ExecutorError):
        return exc
    url = host.url if isinstance(host, HostConfig) else host
    prefix = f"{what}: " if what else ""
    if isinstance(exc, docker.errors.APIError):
        explanation = exc.explanation or str(exc)
        if isinstance(explanation, bytes):
            explanation = explanation.decode("utf-8", "replace")
        return ExecutorError(f"{prefix}{one_line(explanation)} (on {url})")
    if _is_connection_error(exc):
        reason = _reason(exc)
        cls = HostRefused if reason.startswith("TLS") else HostUnreachable
        return cls(f"{url}: {prefix}{reason}")
    return ExecutorError(f"{prefix}{one_line(exc) or type(exc).__name__} (on {url})")


# ----------------------------------------------------------------------- ssh transport


@dataclass(frozen=True)
class _SSHTarget:
    url: str
    host: str
    user: str | None
    port: int | None

    @classmethod
    def parse(cls, url: str) -> _SSHTarget:
        parsed = urllib.parse.urlparse(url)
        if not parsed.hostname:
            raise HostUnreachable(f"{url}: no host name in the URL")
        return cls(url=url, host=parsed.hostname, user=parsed.username, port=parsed.port)

    def argv(self, command: str, connect_timeout: float) -> list[str]:
        args = [
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={max(1, math.ceil(connect_timeout))}",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=4",
        ]
        if self.user:
            args += ["-l", self.user]
        if self.port:
            args += ["-p", str(self.port)]
        return [*args, "--", self.host, command]

    def keyscan_hint(self) -> str:
        port = f"-p {self.port} " if self.port else ""
        return f"ssh-keyscan {port}{self.host} >> ~/.ssh/known_hosts"


def _ssh_failure(
    target: _SSHTarget, rc: int | None, stderr: str, connect_timeout: float | None = None
) -> HostUnreachable:
    url = target.url
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
        return HostRefused(
            f"{url}: host key CHANGED (possible man-in-the-middle); if the host was "
            f"reinstalled, remove the old key with: ssh-keygen -R "
            f"{'[' + target.host + ']:' + str(target.port) if target.port else target.host}"
        )
    if (
        "Host key verification failed" in stderr
        or "No ED25519 host key is known" in stderr
        or (re.search(r"No \S+ host key is known", stderr))
    ):
        return HostRefused(
            f"{url}: host key unknown; add it with: {target.keyscan_hint()} "
            "(check the fingerprint first)"
        )
    if "Permission denied" in stderr and "docker" not in stderr.lower():
        return HostRefused(
            f"{url}: ssh authentication refused (check the user, your key or ssh-agent)"
        )
    if "Connection refused" in stderr:
        return HostUnreachable(f"{url}: ssh connection refused (is sshd listening there?)")
    if "timed out" in stderr:
        return HostUnreachable(_no_answer(url, connect_timeout))
    if "Could not resolve hostname" in stderr:
        return HostUnreachable(f"{url}: cannot resolve the host name")
    if rc == 127 or "command not found" in stderr or "docker: not found" in stderr:
        return HostUnreachable(
            f"{url}: the docker CLI is not installed on the remote host "
            "(ssh hosts need `docker system dial-stdio` there)"
        )
    if "permission denied while trying to connect to the Docker daemon" in stderr:
        return HostUnreachable(
            f"{url}: the ssh user cannot use Docker there (add it to the docker group)"
        )
    if "Cannot connect to the Docker daemon" in stderr or "Is the docker daemon running" in stderr:
        return HostUnreachable(f"{url}: no Docker daemon answers on the remote host")
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    last = lines[-1] if lines else f"ssh exited with status {rc}"
    return HostUnreachable(f"{url}: {one_line(last)}")


def _no_answer(url: str, connect_timeout: float | None) -> str:
    if connect_timeout is None:
        return f"{url}: ssh connection timed out"
    return f"{url}: no answer within {connect_timeout:g} s (connect_timeout)"


def ssh_preflight(url: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Reach the remote Docker through ssh once, with errors explained.

    Returns the remote server's version. Raises HostUnreachable with one line
    (unknown host key, authentication refused, no docker CLI, ...).
    """
    target = _SSHTarget.parse(url)
    argv = target.argv("docker version --format '{{.Server.Version}}'", timeout)
    if _ENDING.is_set():
        raise HostUnreachable(f"{url}: the command is ending")
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout + 5,
            start_new_session=True,
            check=False,
        )
    except FileNotFoundError:
        raise HostUnreachable(f"{url}: no ssh client here (install openssh-client)") from None
    except subprocess.TimeoutExpired:
        raise HostUnreachable(_no_answer(url, timeout)) from None
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise _ssh_failure(target, proc.returncode, stderr)
    return proc.stdout.decode("utf-8", "replace").strip()


class _PipeRaw(io.RawIOBase):
    """Reads the ssh process's stdout; honours the owning socket's timeout.

    Closing it does not close the pipe: http.client closes its response file after
    each response, while the connection (the ssh process) stays pooled.
    """

    def __init__(self, owner: _SSHSocket) -> None:
        super().__init__()
        self._owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        fd = self._owner.stdout_fd()
        timeout = self._owner.gettimeout()
        if timeout is not None:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise TimeoutError("timed out")
        try:
            n = os.readv(fd, [b])
        except OSError:
            n = 0
        if n == 0:
            self._owner.at_eof = True
        return n


class _SSHFile(io.BufferedReader):
    channel: _SSHSocket  # docker-py's _get_raw_response_socket looks for `.channel`


class _SSHSocket:
    """Just enough of a socket for urllib3/http.client, over `ssh ... dial-stdio`."""

    def __init__(self, argv: list[str], on_end: Callable[[_SSHEnd], None] | None = None) -> None:
        self._argv = argv
        self._timeout: float | None = None
        self._on_end = on_end
        self._stderr: IO[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.at_eof = False  # ssh closed its output: it is ending by itself

    def connect(self) -> None:
        if _ENDING.is_set():
            raise OSError("the command is ending: no new ssh connection")
        # ssh's stderr goes to an unnamed file, never to our terminal: when the
        # connection fails, it says why (unknown host key, timeout, no docker CLI)
        # without a second ssh handshake to ask.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        try:
            self.proc = subprocess.Popen(
                self._argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                start_new_session=True,
                bufsize=0,
            )
        except BaseException:
            self._stderr.close()
            self._stderr = None
            raise
        _LIVE_SSH.add(self.proc)

    def stdout_fd(self) -> int:
        if self.proc is None or self.proc.stdout is None:
            raise OSError("ssh connection is closed")
        return self.proc.stdout.fileno()

    def fileno(self) -> int:
        return self.stdout_fd()

    def settimeout(self, timeout: object) -> None:
        self._timeout = float(timeout) if isinstance(timeout, int | float) else None

    def gettimeout(self) -> float | None:
        return self._timeout

    def setsockopt(self, *args: object) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        if self.proc is None or self.proc.stdin is None:
            raise OSError("ssh connection is closed")
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except ValueError:
            raise BrokenPipeError("ssh connection is closed") from None

    def send(self, data: bytes) -> int:
        self.sendall(data)
        return len(data)

    def makefile(self, mode: str = "rb", *args: object, **kwargs: object) -> _SSHFile:
        f = _SSHFile(_PipeRaw(self), buffer_size=64 * 1024)
        f.channel = self
        return f

    def shutdown(self, how: int = socket.SHUT_RDWR) -> None:
        """Unblock readers in other threads: end the ssh process."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.terminate()

    def close(self) -> None:
        proc, self.proc = self.proc, None
        err, self._stderr = self._stderr, None
        if proc is None:
            return
        if self.at_eof:  # let it finish saying why (its status, its stderr)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
        ended_itself = proc.poll() is not None
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.terminate()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=2)
        if err is not None:
            text = ""
            with contextlib.suppress(OSError, ValueError):
                size = err.seek(0, os.SEEK_END)
                err.seek(max(0, size - _STDERR_KEPT))
                text = err.read().decode("utf-8", "replace")
            err.close()
            if self._on_end is not None:
                self._on_end(_SSHEnd(proc.returncode if ended_itself else None, text))


_STDERR_KEPT = 16 * 1024  # the end of a failed ssh's stderr: where it says why


@dataclass(frozen=True, slots=True)
class _SSHEnd:
    """How one ssh transport process ended: its status (None: we ended it) and
    the end of what it wrote on stderr."""

    returncode: int | None
    stderr: str


# Every ssh transport still running: they are in sessions of their own (a Ctrl-C
# meant for the command must not cut a transfer mid-request), so nothing else
# ends them when the command exits; this does, at exit and on SIGTERM.
_LIVE_SSH: weakref.WeakSet[subprocess.Popen[bytes]] = weakref.WeakSet()
_ENDING = threading.Event()  # set once: no new ssh process from then on


@atexit.register
def end_ssh_transports() -> None:
    _ENDING.set()
    for proc in list(_LIVE_SSH):
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                proc.wait(timeout=2)


class _SSHConnection(urllib3.connection.HTTPConnection):
    def __init__(
        self,
        *args: Any,
        ssh_argv: list[str],
        ssh_on_end: Callable[[_SSHEnd], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._ssh_argv = ssh_argv
        self._ssh_on_end = ssh_on_end

    def _new_conn(self) -> Any:
        sock = _SSHSocket(self._ssh_argv, self._ssh_on_end)
        sock.connect()
        return sock


class _SSHConnectionPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _SSHConnection


class _SSHAdapter(BaseHTTPAdapter):
    def __init__(self, argv: list[str], timeout: float, max_pool_size: int) -> None:
        self._argv = argv
        self._timeout = timeout
        self._max_pool_size = max_pool_size
        self._pool: _SSHConnectionPool | None = None
        self.last_end: _SSHEnd | None = None  # the last ssh process that ended
        super().__init__()

    def get_connection(self, url: str | bytes, proxies: Any = None) -> _SSHConnectionPool:
        if self._pool is None:
            self._pool = _SSHConnectionPool(
                "localhost",
                timeout=self._timeout,
                maxsize=self._max_pool_size,
                ssh_argv=self._argv,
                ssh_on_end=self._ended,
            )
        return self._pool

    def request_url(self, request: Any, proxies: Any) -> str:
        return str(request.path_url)

    def _ended(self, end: _SSHEnd) -> None:
        self.last_end = end

    def close(self) -> None:
        super().close()
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _ssh_client(url: str, timeout: float, connect_timeout: float) -> docker.DockerClient:
    target = _SSHTarget.parse(url)
    if shutil.which("ssh") is None:
        raise HostUnreachable(f"{url}: no ssh client here (install openssh-client)")
    # Build the client on a placeholder URL with a fixed version (no request), then
    # route every request through our ssh adapter and ask the real API version.
    client = docker.DockerClient(
        base_url="unix:///var/run/docker.sock",
        version=_PLACEHOLDER_API,
        timeout=int(timeout),
        max_pool_size=MAX_POOL_SIZE,
    )
    argv = target.argv("docker system dial-stdio", connect_timeout)
    adapter = _SSHAdapter(argv, timeout, MAX_POOL_SIZE)
    install_transport(client.api, adapter, "http+docker://ssh")
    try:
        with _first_contact(client.api, connect_timeout):
            set_server_version(client.api)
    except Exception as exc:
        client.close()  # ends the ssh process; its stderr says what went wrong
        end = adapter.last_end
        if end is not None and end.returncode not in (None, 0):
            raise _ssh_failure(target, end.returncode, end.stderr, connect_timeout) from None
        err = describe_error(exc, url)
        if "timed out" in str(err):
            raise HostUnreachable(_no_answer(url, connect_timeout)) from None
        raise err from None
    return client


@contextlib.contextmanager
def _first_contact(api: Any, connect_timeout: float) -> Iterator[None]:
    """The first requests to a host (its version, a ping) wait about its
    connect_timeout, not the client's read timeout (a build's is 30 minutes)."""
    saved = api.timeout
    api.timeout = connect_timeout + FIRST_ANSWER_MARGIN_S
    try:
        yield
    finally:
        api.timeout = saved


# ----------------------------------------------------------------------------- connect


def _tls_config(host: HostConfig) -> TLSConfig | None:
    if not host.uses_tls:
        return None
    for p in (host.tls_ca, host.tls_cert, host.tls_key):
        if p is not None and not Path(p).expanduser().is_file():
            raise HostUnreachable(f"{host.url}: TLS file {p} not found")
    client_cert = (
        (str(Path(host.tls_cert).expanduser()), str(Path(host.tls_key).expanduser()))
        if host.tls_cert and host.tls_key
        else None
    )
    return TLSConfig(
        client_cert=client_cert,
        ca_cert=str(Path(host.tls_ca).expanduser()) if host.tls_ca else None,
        verify=host.tls_verify,  # with ca_cert: verify against it; else the system CAs
    )


def _pin_tls_verify(client: docker.DockerClient) -> None:
    """Make the host's CA win over REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE.

    requests lets those variables replace a session's `verify` on every request, so a
    machine with a corporate CA bundle in the environment would check the Docker
    host's certificate against the wrong CAs. Proxies from the environment still apply.
    """
    api: Any = client.api
    pinned = api.verify
    if pinned is True or pinned is None:
        return
    merge = api.merge_environment_settings

    def merge_pinned(url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        settings = merge(url, proxies, stream, verify, cert)
        settings["verify"] = pinned
        return settings

    api.merge_environment_settings = merge_pinned


def connect(host: HostConfig, timeout: float = DEFAULT_TIMEOUT) -> docker.DockerClient:
    """A connected client (the daemon answered a ping). Blocking.

    Raises HostUnreachable (one line) when the daemon cannot be reached.
    `timeout` bounds the connection and is the default per-request read timeout.
    """
    client: docker.DockerClient | None = None
    reach = min(timeout, host.connect_timeout)
    try:
        if host.scheme == "ssh":
            client = _ssh_client(host.url, timeout, reach)
        elif host.scheme == "local":
            env_host = os.environ.get("DOCKER_HOST", "")
            if env_host.startswith(_SSH_SCHEME):
                client = _ssh_client(env_host, timeout, reach)
            else:
                client = docker.from_env(
                    timeout=int(timeout), max_pool_size=MAX_POOL_SIZE, version=_PLACEHOLDER_API
                )
        else:
            tls = _tls_config(host)  # a missing TLS file is said before any connection
            if host.scheme == "tcp":
                _reach_tcp(host, reach)
            client = docker.DockerClient(
                base_url=host.url,
                tls=tls or False,
                timeout=int(timeout),
                max_pool_size=MAX_POOL_SIZE,
                version=_PLACEHOLDER_API,
            )
        with _first_contact(client.api, reach):
            if host.scheme != "ssh" and client.api.base_url != "http+docker://ssh":
                # Built with a placeholder version (no request yet): pin TLS first,
                # then ask the daemon for its API version, like docker-py's "auto".
                _pin_tls_verify(client)
                set_server_version(client.api)
            client.ping()
        return client
    except HostUnreachable:
        if client is not None:
            client.close()
        raise
    except Exception as exc:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        err = describe_error(exc, host)
        if isinstance(err, HostUnreachable) and _reason(exc) == "timed out":
            err = HostUnreachable(f"{host.url}: no answer within {reach:g} s (connect_timeout)")
        if not isinstance(err, HostUnreachable):
            err = HostUnreachable(str(err))
        raise err from None


def _reach_tcp(host: HostConfig, connect_timeout: float) -> None:
    """Open and close a TCP connection to a tcp:// host within connect_timeout:
    docker-py has one timeout for connecting and reading, and a build's is long."""
    parsed = urllib.parse.urlparse(host.url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), connect_timeout):
            pass
    except TimeoutError:
        raise HostUnreachable(
            f"{host.url}: no answer within {connect_timeout:g} s (connect_timeout)"
        ) from None
    except OSError as exc:
        # The same one-line reasons as a failure inside docker-py ("connection refused").
        raise HostUnreachable(f"{host.url}: {_reason(exc)}") from None


def probe(host: HostConfig, timeout: float = 10.0) -> HostReport:
    """Reach the host and describe it; never raises for connection problems."""
    report = HostReport(name=host.name, url=host.url, reachable=False)
    try:
        client = connect(host, timeout)
    except ExecutorError as exc:
        report.error = str(exc)
        return report
    try:
        version = client.version()
        info = client.info()
    except Exception as exc:
        report.error = str(describe_error(exc, host, "probe"))
        return report
    finally:
        client.close()
    report.reachable = True
    report.api_version = str(version.get("ApiVersion") or "") or None
    report.server_version = str(version.get("Version") or "") or None
    report.os = str(info.get("OperatingSystem") or version.get("Os") or "") or None
    report.arch = str(info.get("Architecture") or version.get("Arch") or "") or None
    runtimes = info.get("Runtimes") or {}
    report.runtimes = sorted(str(r) for r in runtimes)
    report.gpu_runtime = "nvidia" in runtimes
    return report
