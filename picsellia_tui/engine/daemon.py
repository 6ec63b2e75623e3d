"""The engine as a server: `engine serve` in the foreground, or the background
engine a command or the app starts on demand (engine/autostart.py).

It supervises runs and serves the control socket. With `idle_exit` it leaves by
itself once no run is active (none pending or running in the workspace) and no
client has been connected for `engine_idle_seconds`; its socket goes with it. A
background engine that finds another engine serving the socket leaves at once:
one engine per workspace.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable

import anyio

from picsellia_tui.engine.config import Settings
from picsellia_tui.engine.control import Presence, serve_control
from picsellia_tui.engine.core import Engine

log = logging.getLogger("picsellia_tui.engine")
IDLE_CHECK_S = 0.5
TAKE_OVER_CHECK_S = 1.0


async def serve_engine(
    settings: Settings, *, idle_exit: bool = False, say: Callable[[str], None] = log.warning
) -> int:
    """Serve until a signal (SIGINT, SIGTERM) or, with `idle_exit`, until idle.
    The exit code: 0, or 1 when a background engine found the socket taken."""
    presence = Presence()
    async with Engine(settings, supervise=True) as e, anyio.create_task_group() as tg:
        sock = await tg.start(serve_control, e, presence)
        if sock is None and idle_exit:
            say(f"engine {e.engine_id}: another engine serves {settings.database_path}; leaving")
            tg.cancel_scope.cancel()
            return 1
        st = await e.stats()
        say(
            f"engine {e.engine_id} serving {e.settings.database_path} "
            f"({st.running} running, {st.pending} pending"
            f"{f'; commands hand it their launches through {sock}' if sock else ''}); "
            + (
                f"leaves after {settings.engine_idle_seconds:g} s with no run and no client"
                if idle_exit
                else "Ctrl-C stops it (containers keep running)"
            )
        )
        if idle_exit:
            tg.start_soon(_leave_when_idle, e, presence, tg.cancel_scope, say)
        elif sock is None:
            # Another engine (a background one, an app's) has the socket: this one
            # takes it over when that one leaves, so commands then find this one
            # (`engine serve` under systemd, started while a background engine ran).
            say("another engine serves the socket for now; this one takes it over when it leaves")
            tg.start_soon(_take_over_socket, e, presence, say)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                say("engine stopping; runs keep going and are adopted at next start")
                tg.cancel_scope.cancel()
                break
    return 0


async def _leave_when_idle(
    e: Engine, presence: Presence, scope: anyio.CancelScope, say: Callable[[str], None]
) -> None:
    grace = e.settings.engine_idle_seconds
    quiet_since = time.monotonic()
    while True:
        await anyio.sleep(min(IDLE_CHECK_S, max(grace / 4, 0.05)))
        st = await e.stats()
        now = time.monotonic()
        if presence.clients or st.running or st.pending:
            quiet_since = now
            continue
        # Cancelling closes the socket before any other task runs: a client that
        # connects now finds none (or is cut before its request is read) and
        # starts a new engine.
        if now - max(quiet_since, presence.idle_since) >= grace:
            say(f"engine {e.engine_id}: idle for {grace:g} s (no run, no client); leaving")
            scope.cancel()
            return


async def _take_over_socket(e: Engine, presence: Presence, say: Callable[[str], None]) -> None:
    while True:
        await anyio.sleep(TAKE_OVER_CHECK_S)
        async with anyio.create_task_group() as tg:
            sock = await tg.start(serve_control, e, presence)
            if sock is None:
                continue  # still held: serve_control has returned
            say(f"engine {e.engine_id}: commands hand it their launches through {sock} now")
            await anyio.sleep_forever()  # serve_control serves in tg until we are cancelled
