"""Waiting out a Docker host that stopped answering (daemon restart, ssh drop).

Two windows, both per host (`[[hosts]]` in the config):
- before a run's host has answered for it (the run is being started), attempts go
  on for at most the host's `connect_timeout`: a host that is down or black-holed
  fails the run in about that time, with the reason, instead of leaving the user
  waiting on a host that was never there;
- once it has answered (the container exists), a lost contact is retried for
  `reconnect_window` seconds (90 by default) before the run is failed with that
  reason: a daemon restart or a dropped ssh connection must not fail a run that
  goes on on its host.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio

from picsellia_tui.engine.config import ConfigError, Settings
from picsellia_tui.engine.executors.base import HostRefused, HostUnreachable
from picsellia_tui.engine.hostconfig import HostConfig

T = TypeVar("T")

_DEFAULTS = HostConfig()


@dataclass(frozen=True, slots=True)
class HostWindows:
    start: float  # seconds to reach the host before the run exists there
    lost: float  # seconds to reach it again once it has answered


def host_windows(settings: Settings, host: str | None) -> HostWindows:
    try:
        h = settings.host(host)
    except ConfigError:  # a host dropped from the config since the launch
        h = _DEFAULTS
    return HostWindows(start=h.connect_timeout, lost=h.reconnect_window)


async def with_host_retry(fn: Callable[[], Awaitable[T]], window: float) -> T:
    """Retry while the host is unreachable, for `window` seconds; not when it
    refuses us (bad certificate, unknown host key): waiting cannot fix that.
    An attempt that failed after the window ends the wait (one attempt of a
    black-holed host takes the whole connect_timeout)."""
    deadline = time.monotonic() + window
    delay = 0.5
    while True:
        try:
            return await fn()
        except HostRefused:
            raise
        except HostUnreachable:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            await anyio.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)
