"""tcp:// hosts with TLS: client certificates, verification on by default."""

from __future__ import annotations

from typing import Any

import pytest

from picsellia_tui.engine.executors.base import HostUnreachable
from picsellia_tui.engine.hosts import connect, probe

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_tls_with_client_certificate(tls_proxy: Any) -> None:
    client = connect(tls_proxy.host(), timeout=10)
    try:
        assert client.ping()
        assert client.api.base_url.startswith("https://")
    finally:
        client.close()
    assert probe(tls_proxy.host()).reachable


def test_server_certificate_is_verified(tls_proxy: Any) -> None:
    host = tls_proxy.host(tls_ca=tls_proxy.other_ca)
    with pytest.raises(HostUnreachable) as info:
        connect(host, timeout=10)
    assert str(info.value) == f"{tls_proxy.url}: TLS: certificate verification failed"


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verification_can_be_turned_off(tls_proxy: Any) -> None:
    client = connect(tls_proxy.host(tls_ca=tls_proxy.other_ca, tls_verify=False), timeout=10)
    try:
        assert client.ping()
    finally:
        client.close()


def test_server_requires_a_client_certificate(tls_proxy: Any) -> None:
    with pytest.raises(HostUnreachable) as info:
        connect(tls_proxy.host(tls_cert=None, tls_key=None), timeout=10)
    assert "\n" not in str(info.value) and str(info.value).startswith(tls_proxy.url)
