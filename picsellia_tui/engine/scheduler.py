"""The scheduler: claims pending runs within the concurrency limit of each host,
supervises each claimed run in its own task, keeps their leases alive, and adopts
the runs nobody supervises (see `reconcile`)."""

from __future__ import annotations

import functools
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskGroup
from sqlmodel import Session

from picsellia_tui.engine import reconcile
from picsellia_tui.engine.events import ExternalChange
from picsellia_tui.engine.runtime import Runtime
from picsellia_tui.storage import repo

log = logging.getLogger("picsellia_tui.engine")


class Scheduler:
    def __init__(self, rt: Runtime, supervise: Callable[[int], Awaitable[None]]) -> None:
        self.rt = rt
        self._supervise_run = supervise
        self.supervised: dict[int, anyio.CancelScope] = {}
        self._tg: TaskGroup | None = None
        self._external_change = False

    def start(self, tg: TaskGroup, *, supervise: bool) -> None:
        """Watch the database always; schedule, beat and reconcile when supervising."""
        self._tg = tg
        tg.start_soon(self._watch_database)
        if supervise:
            tg.start_soon(self._scheduler_loop)
            tg.start_soon(self._heartbeat_loop)
            tg.start_soon(self._reconcile_loop)

    async def _watch_database(self) -> None:
        """Tell subscribers when another process commits (PRAGMA data_version)."""
        conn = sqlite3.connect(self.rt.ws.db.path, check_same_thread=False)
        try:
            last = conn.execute("PRAGMA data_version").fetchone()[0]
            while True:
                await anyio.sleep(0.5)
                now = conn.execute("PRAGMA data_version").fetchone()[0]
                if now != last:
                    last = now
                    self.rt.events.publish(ExternalChange())
                    self._external_change = True
                    self.rt.wake()
        finally:
            conn.close()

    async def _scheduler_loop(self) -> None:
        while True:
            await self.rt.wait_wake(2.0)
            try:
                if self._external_change:
                    # Another process wrote: it may have left a run we should adopt
                    # (a CLI `launch` that returned once its container started).
                    self._external_change = False
                    await self.reconcile()
                await self._claim_pending()
            except Exception:
                log.exception("scheduler pass failed")

    async def _claim_pending(self) -> None:
        s = self.rt.settings
        engine_id = self.rt.engine_id
        hosts = [h.name for h in s.hosts] if s.executor == "docker" else ["local"]

        def w(sess: Session) -> list[int]:
            claimed: list[int] = []
            for host in hosts:
                busy = repo.busy_count(sess, host, s.lease_timeout_seconds)
                runs = repo.claimable_runs(
                    sess, engine_id, s.lease_timeout_seconds, s.concurrency - busy, host=host
                )
                claimed += [r.id for r in runs if r.id is not None and r.id not in self.supervised]
            return claimed

        for run_id in await self.rt.db(self.rt.write(w)):
            self._spawn(run_id)

    def _spawn(self, run_id: int) -> None:
        assert self._tg is not None
        scope = anyio.CancelScope()
        self.supervised[run_id] = scope

        async def go() -> None:
            try:
                with scope:
                    await self._supervise_run(run_id)
            finally:
                self.supervised.pop(run_id, None)
                self.rt.wake()  # a slot may have freed

        self._tg.start_soon(go)

    async def _heartbeat_loop(self) -> None:
        while True:
            await anyio.sleep(self.rt.settings.heartbeat_seconds)
            ids = list(self.supervised)
            if not ids:
                continue
            try:
                lost = await self.rt.db(
                    self.rt.write(functools.partial(_beat, self.rt.engine_id, ids))
                )
            except Exception:
                log.exception("heartbeat failed")
                continue
            for rid in lost:  # another engine took over while we stalled: let it
                scope = self.supervised.pop(rid, None)
                if scope is not None:
                    scope.cancel()

    async def _reconcile_loop(self) -> None:
        last_prune = 0.0
        while True:
            try:
                await self.reconcile()
                if time.monotonic() - last_prune > 3600:
                    last_prune = time.monotonic()
                    await self.rt.db(self.prune_logs)
            except Exception:
                log.exception("reconciliation failed")
            await anyio.sleep(self.rt.settings.reconcile_seconds)

    def prune_logs(self) -> int:
        return reconcile.prune_logs(self.rt.ws, self.rt.settings.log_retention_days)

    async def reconcile(self) -> list[int]:
        """Adopt running runs nobody supervises (engine killed, app closed)."""
        adopted = await self.rt.db(
            self.rt.write(
                functools.partial(
                    reconcile.take_orphans,
                    engine_id=self.rt.engine_id,
                    timeout=self.rt.settings.lease_timeout_seconds,
                    skip=self.supervised.keys(),
                )
            )
        )
        for rid in adopted:
            self._spawn(rid)
        self.rt.wake()
        return adopted


def _beat(owner: str, ids: list[int], s: Session) -> list[int]:
    return repo.heartbeat(s, owner, ids)
