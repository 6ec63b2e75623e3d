"""hosts: config validation, one-line failures, ssh (unknown host key) and probe."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from picsellia_tui.engine.executors.base import HostUnreachable
from picsellia_tui.engine.hosts import HostConfig, connect, probe, ssh_preflight


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    "url",
    [
        "local",
        "unix:///var/run/docker.sock",
        "ssh://root@gpu-box",
        "ssh://u@10.0.0.2:2222",
        "tcp://h:2376",
    ],
)
def test_valid_urls(url: str) -> None:
    assert HostConfig(name="h", url=url).url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://h:2375",
        "gpu-box",
        "tcp://h",
        "ssh://",
        "unix://",
        "ssh://h:notaport",
        "ssh://h/path",
    ],
)
def test_invalid_urls(url: str) -> None:
    with pytest.raises(ValidationError):
        HostConfig(name="h", url=url)


def test_tls_rules(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="only apply to tcp"):
        HostConfig(url="ssh://h", tls_ca=tmp_path / "ca.pem")
    with pytest.raises(ValidationError, match="both tls_cert and tls_key"):
        HostConfig(url="tcp://h:2376", tls_cert=tmp_path / "cert.pem")
    h = HostConfig(url="tcp://h:2376", tls_ca=tmp_path / "ca.pem")
    assert h.uses_tls and h.tls_verify and h.is_remote


def ssh_children() -> list[int]:
    """Our child processes running `docker system dial-stdio` through ssh."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and b"dial-stdio" in cmd:
            found.append(int(entry.name))
    return found


def one_line_unreachable(host: HostConfig) -> str:
    with pytest.raises(HostUnreachable) as info:
        connect(host, timeout=5)
    msg = str(info.value)
    assert "\n" not in msg and "Traceback" not in msg
    assert msg.startswith(host.url)
    return msg


def test_missing_socket(tmp_path: Path) -> None:
    msg = one_line_unreachable(HostConfig(url=f"unix://{tmp_path}/docker.sock"))
    assert msg.endswith("no Docker socket there")


def test_tcp_refused() -> None:
    msg = one_line_unreachable(HostConfig(url=f"tcp://127.0.0.1:{closed_port()}"))
    assert "connection refused" in msg


def test_tls_files_missing(tmp_path: Path) -> None:
    msg = one_line_unreachable(HostConfig(url="tcp://127.0.0.1:2376", tls_ca=tmp_path / "ca.pem"))
    assert "TLS file" in msg and "not found" in msg


@pytest.mark.skipif(shutil.which("ssh") is None, reason="no ssh client")
def test_ssh_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    msg = one_line_unreachable(HostConfig(url=f"ssh://root@127.0.0.1:{closed_port()}"))
    assert "ssh connection refused" in msg


def test_probe_unreachable(tmp_path: Path) -> None:
    report = probe(HostConfig(name="x", url=f"unix://{tmp_path}/nope.sock"), timeout=2)
    assert not report.reachable and report.error and "\n" not in report.error


@pytest.mark.docker
def test_probe_local(docker_client: Any) -> None:
    report = probe(HostConfig())
    assert report.reachable and report.error is None
    assert report.api_version and report.server_version
    assert isinstance(report.gpu_runtime, bool)


@pytest.mark.docker
@pytest.mark.slow
def test_ssh_probe_and_connect(ssh_path: Any) -> None:
    host = HostConfig(name="loop", url=ssh_path.url)
    assert ssh_preflight(host.url)
    report = probe(host)
    assert report.reachable, report.error
    client = connect(host)
    try:
        assert client.ping()
        # pooled: many requests, not one ssh process per request
        for _ in range(20):
            client.api.version()
        assert 1 <= len(ssh_children()) <= 2
    finally:
        client.close()
    assert ssh_children() == []  # closed and reaped


@pytest.mark.docker
@pytest.mark.slow
def test_ssh_unknown_host_key_refused(sshd_host: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{sshd_host.bin_dir_unknown_key}{os.pathsep}{os.environ['PATH']}")
    host = HostConfig(name="loop", url=sshd_host.url)
    msg = one_line_unreachable(host)
    assert msg == (
        f"{sshd_host.url}: host key unknown; add it with: ssh-keyscan -p {sshd_host.port} "
        "127.0.0.1 >> ~/.ssh/known_hosts (check the fingerprint first)"
    )
    report = probe(host)
    assert not report.reachable and report.error == msg
