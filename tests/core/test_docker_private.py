"""The docker-py internals of engine/executors/docker_private.py, against the installed
docker-py, requests, urllib3 and http.client: no daemon, a local HTTP server that
answers like one. When an upgrade renames or removes an internal, a test here fails
and names it (rather than a run failing, or the log fast path silently turning off).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import docker
import docker.errors
import pytest
import urllib3

from picsellia_tui.engine.executors.docker_logs import ChunkedDecoder, ContainerLogReader
from picsellia_tui.engine.executors.docker_private import (
    BaseHTTPAdapter,
    abort_response,
    clear_read_timeout,
    install_transport,
    raw_body,
    response_socket,
    set_server_version,
    stream_request,
)

API = "1.43"
FRAMES = [b"\x01\x00\x00\x00\x00\x00\x00\x06hello\n", b"\x02\x00\x00\x00\x00\x00\x00\x05oops\n"]
ARCHIVE = b"x" * 70_000  # more than one 64 KiB read


class FakeDaemon(BaseHTTPRequestHandler):
    """Just enough of the Engine API: /version, logs, attach, archive, a 404, a stall."""

    protocol_version = "HTTP/1.1"
    release = threading.Event()

    def log_message(self, *args: Any) -> None:  # keep pytest's output clean
        pass

    def _json(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunked(self, chunks: list[bytes], stall: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.raw-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for c in chunks:  # one HTTP chunk per frame, as dockerd flushes them
            self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
            self.wfile.flush()
        if stall:
            self.release.wait(30)
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/version":
            self._json(200, {"ApiVersion": API, "Version": "fake"})
        elif path == f"/v{API}/containers/abc/logs":
            assert "timestamps=1" in self.path and "follow=1" in self.path
            self._chunked(FRAMES)
        elif path == f"/v{API}/containers/stall/logs":
            self._chunked(FRAMES[:1], stall=True)
        elif path == f"/v{API}/containers/abc/archive":
            assert "path=%2Fpicsellia%2Foutputs" in self.path
            self.send_response(200)
            self.send_header("Content-Type", "application/x-tar")
            self.send_header("Content-Length", str(len(ARCHIVE)))
            self.end_headers()
            self.wfile.write(ARCHIVE)
        else:
            self._json(404, {"message": f"No such container: {path}"})

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] == f"/v{API}/containers/abc/attach":
            self._chunked(FRAMES)
        else:
            self._json(404, {"message": "no such endpoint"})


@pytest.fixture
def daemon() -> Iterator[str]:
    FakeDaemon.release.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeDaemon)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        FakeDaemon.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def api(daemon: str) -> Iterator[Any]:
    client = docker.APIClient(base_url=daemon, version="1.41", timeout=10)
    set_server_version(client)  # the placeholder version replaced, as hosts.connect does
    yield client
    client.close()


def _read_all(res: Any) -> bytes:
    return b"".join(ContainerLogReader._chunks(res))


def test_server_version_replaces_the_placeholder(api: Any) -> None:
    assert api.api_version == API
    assert api._url("/containers/{0}/logs", "abc").endswith(f"/v{API}/containers/abc/logs")


def test_logs_stream_reads_the_raw_chunked_body(api: Any) -> None:
    params = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": 1}
    res = stream_request(api, "GET", "/containers/{0}/logs", "abc", params)
    try:
        body = raw_body(res)
        # None would mean the fast path (64 KiB reads) is silently off after an upgrade.
        assert body is not None, "urllib3/http.client internals changed: res.raw._fp.fp"
        assert body.chunked
        decoder = ChunkedDecoder()
        data = b""
        while not decoder.done:
            piece = body.read1(65536)
            assert piece, "the body ended before its last chunk"
            data += decoder.feed(piece)
        assert data == b"".join(FRAMES)
    finally:
        res.close()


def test_attach_is_a_post_with_the_same_stream(api: Any) -> None:
    params = {"stdout": 1, "stderr": 1, "stream": 1, "logs": 0}
    res = stream_request(api, "POST", "/containers/{0}/attach", "abc", params)
    try:
        assert raw_body(res) is not None
        assert _read_all(res) == b"".join(FRAMES)
    finally:
        res.close()


def test_archive_with_a_length_reads_to_its_end(api: Any) -> None:
    res = stream_request(
        api, "GET", "/containers/{0}/archive", "abc", {"path": "/picsellia/outputs"}
    )
    try:
        body = raw_body(res)
        assert body is not None and not body.chunked and body.length == len(ARCHIVE)
        assert _read_all(res) == ARCHIVE
    finally:
        res.close()


def test_refusal_raises_dockers_error(api: Any) -> None:
    with pytest.raises(docker.errors.NotFound, match="No such container"):
        stream_request(api, "GET", "/containers/{0}/logs", "gone", {})


def test_socket_found_and_abort_unblocks_a_reader(api: Any) -> None:
    res = stream_request(api, "GET", "/containers/{0}/logs", "stall", {})
    sock = response_socket(res)
    assert sock is not None, "urllib3 internals changed: res.raw.connection.sock"
    assert isinstance(sock, socket.socket)
    clear_read_timeout(res)
    assert sock.gettimeout() is None
    got: list[bytes] = []
    reader = threading.Thread(
        target=lambda: got.extend(ContainerLogReader._chunks(res)), daemon=True
    )
    reader.start()
    time.sleep(0.3)
    assert reader.is_alive(), "the reader should be waiting on the stalled stream"
    abort_response(res)
    reader.join(5)
    assert not reader.is_alive(), "abort_response did not unblock the reading thread"
    assert b"".join(got).startswith(FRAMES[0])
    res.close()


class _LoopbackAdapter(BaseHTTPAdapter):
    """Our ssh transport's shape (hosts._SSHAdapter): one pool, path-only URLs."""

    def __init__(self, port: int) -> None:
        self.pool = urllib3.HTTPConnectionPool("127.0.0.1", port)
        self.used = 0
        super().__init__()

    def get_connection(self, url: str | bytes, proxies: Any = None) -> Any:
        self.used += 1
        return self.pool

    def request_url(self, request: Any, proxies: Any) -> str:
        return str(request.path_url)


def test_an_installed_transport_carries_every_request(daemon: str) -> None:
    client = docker.APIClient(base_url="unix:///nonexistent.sock", version="1.41", timeout=10)
    adapter = _LoopbackAdapter(int(daemon.rsplit(":", 1)[1]))
    try:
        install_transport(client, adapter, "http+docker://ssh")
        assert set_server_version(client) == API
        res = stream_request(
            client, "GET", "/containers/{0}/logs", "abc", {"timestamps": 1, "follow": 1}
        )
        try:
            assert _read_all(res) == b"".join(FRAMES)
        finally:
            res.close()
        assert adapter.used >= 2
        assert client.get_adapter("http+docker://ssh/v1.43/version") is adapter
    finally:
        client.close()
