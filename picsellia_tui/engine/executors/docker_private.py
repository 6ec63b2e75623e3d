"""Every private docker-py (and urllib3 / http.client) detail we rely on, in one place.

docker-py has no public call for what the executor needs on a hot path: a streamed
`GET`/`POST` of any endpoint with our own parameters (attach before start, logs with
stream ids and timestamps, a container archive streamed without buffering), the socket
under a streamed response (to clear its read timeout, or to cut a read from another
thread), the undecoded body (64 KiB reads instead of one read per HTTP chunk), and
installing our own transport (the ssh one in hosts.py) on a built client.

Nothing else in the package touches these names. tests/core/test_docker_private.py
drives each function against a local HTTP server with the installed docker-py, urllib3
and requests, without a daemon: an upgrade that renames or removes one of them fails
there, naming it, instead of deep inside a run. pyproject.toml bounds docker-py below
its next major version for the same reason.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import requests
from docker.transport.basehttpadapter import BaseHTTPAdapter

__all__ = [
    "BaseHTTPAdapter",
    "RawBody",
    "abort_response",
    "clear_read_timeout",
    "install_transport",
    "raw_body",
    "response_socket",
    "set_server_version",
    "stream_request",
]


def stream_request(
    api: Any,
    method: Literal["GET", "POST"],
    path: str,
    ref: str,
    params: dict[str, Any],
) -> requests.Response:
    """`method path` (`{0}` in `path` is `ref`, quoted) as a streamed response.

    The daemon's refusal is raised as docker-py raises it (`docker.errors.NotFound`,
    `APIError`...), with the response closed first.
    """
    url = api._url(path, ref)
    send = api._post if method == "POST" else api._get
    res: requests.Response = send(url, params=params, stream=True)
    try:
        api._raise_for_status(res)
    except Exception:
        res.close()
        raise
    return res


def response_socket(res: Any) -> Any:
    """The socket (or our ssh pseudo-socket) a streamed response reads from, or None."""
    raw = getattr(res, "raw", None)
    conn = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    return getattr(conn, "sock", None)


def clear_read_timeout(res: Any) -> None:
    """Let reads of a streamed response wait forever (a quiet container is normal; the
    client's per-request timeout would end the stream)."""
    sock = response_socket(res)
    if sock is not None:
        with contextlib.suppress(Exception):
            sock.settimeout(None)


def abort_response(res: Any) -> None:
    """Unblock a thread reading `res` (unix, tcp, tls or our ssh transport)."""
    sock = response_socket(res)
    if sock is not None:
        with contextlib.suppress(Exception):
            sock.shutdown(socket.SHUT_RDWR)
        return
    with contextlib.suppress(Exception):
        res.raw.shutdown()


@dataclass(frozen=True, slots=True)
class RawBody:
    """The response's socket file, read past http.client's per-chunk decoding."""

    read1: Callable[[int], bytes]
    chunked: bool  # still chunk-encoded on the wire: the caller decodes it
    length: int | None  # Content-Length when not chunked (None: until EOF)


def raw_body(res: Any) -> RawBody | None:
    """The untouched body of a streamed response, or None when the internals differ
    (a transport or a library version we do not know: read through urllib3 then)."""
    httplib = getattr(getattr(res, "raw", None), "_fp", None)  # http.client.HTTPResponse
    read1 = getattr(getattr(httplib, "fp", None), "read1", None)
    if httplib is None or read1 is None:
        return None
    chunked = getattr(httplib, "chunked", None)
    # chunk_left None: no chunk of the body has been read yet.
    if chunked is True and getattr(httplib, "chunk_left", 0) is None:
        return RawBody(read1, True, None)
    if chunked is False:
        return RawBody(read1, False, getattr(httplib, "length", None))
    return None


def install_transport(api: Any, adapter: BaseHTTPAdapter, base_url: str) -> None:
    """Route every request of a built client through `adapter` (replacing docker-py's
    own transports), as docker-py does for its own ssh:// support."""
    for prefix in list(api.adapters):
        api.adapters.pop(prefix).close()
    api.mount(base_url, adapter)
    api._custom_adapter = adapter
    api.base_url = base_url


def set_server_version(api: Any) -> str:
    """Ask the daemon for its API version and use it from now on (what docker-py's
    version="auto" does, after we built the client on a placeholder version)."""
    version = str(api._retrieve_server_version())
    api._version = version
    return version
