"""Waiting out a Docker host that stopped answering (daemon restart, ssh drop)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from picsellia_tui.engine.executors.base import HostRefused, HostUnreachable

T = TypeVar("T")

# How long a lost contact with a Docker host is retried before the run is
# failed with that reason (nothing stays "running" forever).
HOST_RETRY_S = 90.0


async def with_host_retry(fn: Callable[[], Awaitable[T]]) -> T:
    """Retry while the host is unreachable; not when it refuses us (bad
    certificate, unknown host key): waiting cannot fix that."""
    deadline = time.monotonic() + HOST_RETRY_S
    delay = 0.5
    while True:
        try:
            return await fn()
        except HostRefused:
            raise
        except HostUnreachable:
            if time.monotonic() > deadline:
                raise
            await anyio.sleep(delay)
            delay = min(delay * 2, 5.0)
