"""The engine: services (import, launch, re-run, cancel), scheduler, supervision,
reconciliation and the event stream. anyio throughout; database work runs in
worker threads so a busy SQLite never stalls the loop.

Usage:
    async with Engine(settings) as engine:           # queries and services
    async with Engine(settings, supervise=True) ...  # + scheduler, reconcile, leases
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream
from sqlmodel import Session, col, select

from picsellia_tui.engine import catalog, enginelog, queries, reruns
from picsellia_tui.engine.config import Settings
from picsellia_tui.engine.errors import (
    EngineError,
    Incompatible,
    InvalidInput,
    NotFound,
    RerunRefused,
)
from picsellia_tui.engine.events import (
    Broadcaster,
    Event,
    ExternalChange,
    JobCreated,
    LogAppended,
    RunChanged,
    VersionCreated,
)
from picsellia_tui.engine.executors.base import (
    Executor,
    ExecutorError,
    InputFile,
    Limits,
    LogLine,
    RunSpec,
    Stream,
)
from picsellia_tui.engine.logcapture import LogSink, one_line_batches
from picsellia_tui.engine.logtext import strip_ansi
from picsellia_tui.engine.views import EngineStats, JobView, ProcessingView, RunView, VersionView
from picsellia_tui.engine.workspace import Workspace
from picsellia_tui.storage import repo
from picsellia_tui.storage.domain import OutputMode, RunStatus, parse_memory
from picsellia_tui.storage.logfile import LogWriter, error_tail, index_path
from picsellia_tui.storage.models import Job, Model, ModelVersion, Run, VersionFile
from picsellia_tui.storage.params import (
    ParameterError,
    resolve_parameters,
    secret_env_name,
    split_secrets,
)

log = logging.getLogger("picsellia_tui.engine")
T = TypeVar("T")

LOG_BATCH = 5000
# How long a lost contact with a Docker host is retried before the run is
# failed with that reason (nothing stays "running" forever).
HOST_RETRY_S = 90.0
DRAIN_GRACE_S = 5.0  # after the exit, a log stream silent this long is cut
REPLAY_IDLE_S = 60.0  # and its replay gets this long without a new line
LOG_GIVE_UP_S = 30.0  # after the exit, lines that cannot be stored (full disk) are dropped


class Engine:
    def __init__(
        self,
        settings: Settings,
        *,
        supervise: bool = False,
        engine_id: str | None = None,
        executor_factory: Callable[[str, str], Executor] | None = None,
    ) -> None:
        self.settings = settings
        self.supervise = supervise
        self.engine_id = engine_id or f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._executor_factory = executor_factory
        self._executors: dict[tuple[str, str], Executor] = {}
        self.events = Broadcaster()
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self._wake = anyio.Event()
        self._external_change = False
        self._supervised: dict[int, anyio.CancelScope] = {}
        self._limiter = anyio.CapacityLimiter(8)
        self.ws: Workspace
        self.sync_errors: list[str] = []

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Self:
        self.ws = await anyio.to_thread.run_sync(Workspace, self.settings)
        enginelog.attach(self.settings.data_dir)  # not the terminal of whoever runs us
        _, self.sync_errors = await self._db(lambda: catalog.sync_public(self.ws))
        for err in self.sync_errors:
            log.warning("processing definition skipped: %s", err)
        self._stack = AsyncExitStack()
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        self._tg.start_soon(self._watch_database)
        if self.supervise:
            self._tg.start_soon(self._scheduler_loop)
            self._tg.start_soon(self._heartbeat_loop)
            self._tg.start_soon(self._reconcile_loop)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tg is not None and self._stack is not None
        supervised = list(self._supervised)  # cancelling empties it
        self._tg.cancel_scope.cancel()
        # The caller's own exception propagates as it is (not wrapped in a group).
        await self._stack.__aexit__(None, None, None)
        # Leases are released so another engine takes over at once, not after a timeout.
        if supervised:
            with anyio.CancelScope(shield=True):
                await self._db(lambda: self._release(supervised))
        for ex in self._executors.values():
            with anyio.CancelScope(shield=True):
                await ex.aclose()
        self.events.close()
        self.ws.close()
        enginelog.detach(self.settings.data_dir)

    def _release(self, ids: list[int]) -> None:
        with self.ws.db.write() as s:
            for rid in ids:
                repo.release_lease(s, rid, self.engine_id)

    async def _db(self, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn, limiter=self._limiter)

    def _read(self, fn: Callable[[Session], T]) -> Callable[[], T]:
        def go() -> T:
            with self.ws.db.read() as s:
                return fn(s)

        return go

    def _write(self, fn: Callable[[Session], T]) -> Callable[[], T]:
        return lambda: self.ws.db.write_retry(fn)

    def executor(self, kind: str, host: str) -> Executor:
        key = (kind, host)
        if key not in self._executors:
            if self._executor_factory is not None:
                self._executors[key] = self._executor_factory(kind, host)
            elif kind == "process":
                from picsellia_tui.engine.executors.process import ProcessExecutor

                self._executors[key] = ProcessExecutor(self.ws.runs_dir, host="local")
            else:
                from picsellia_tui.engine.executors.docker_executor import DockerExecutor

                s = self.settings
                self._executors[key] = DockerExecutor(
                    s.host(host),
                    self.engine_id,
                    default_memory=s.default_memory,
                    default_cpu=s.default_cpu,
                    pids_limit=s.pids_limit,
                    keep_failed=s.keep_failed_containers,
                )
        return self._executors[key]

    def subscribe(self) -> MemoryObjectReceiveStream[Event]:
        return self.events.subscribe()

    # -- queries ---------------------------------------------------------------

    async def stats(self) -> EngineStats:
        counts = await self._db(self._read(queries.run_counts))
        s = self.settings
        return EngineStats(
            running=counts["running"],
            pending=counts["pending"],
            organization=s.organization,
            user=s.user,
            host=s.host(None).url if s.executor == "docker" else "local processes",
            executor=s.executor,
        )

    async def processings(self) -> list[ProcessingView]:
        return await self._db(self._read(queries.list_processings))

    async def processing(self, name: str) -> ProcessingView:
        def q(s: Session) -> ProcessingView:
            return queries.processing_view(catalog.find_processing(s, name), queries.Names(s))

        return await self._db(self._read(q))

    async def versions(self, files: bool = False) -> list[VersionView]:
        return await self._db(self._read(lambda s: queries.list_versions(s, files=files)))

    async def version(self, ref: str) -> VersionView:
        def q(s: Session) -> VersionView:
            _, v = catalog.find_version(s, ref)
            return queries.version_view(s, v, queries.Names(s), files=True)

        return await self._db(self._read(q))

    async def jobs(self, **kw: Any) -> list[JobView]:
        return await self._db(self._read(lambda s: queries.list_jobs(s, **kw)))

    async def latest_runs(self, job_ids: list[int]) -> dict[int, RunView]:
        """Each job's latest run (for a list's duration column), one query."""
        return await self._db(self._read(lambda s: queries.latest_runs(s, job_ids)))

    async def count_jobs(self, status: str | None = None) -> int:
        return await self._db(self._read(lambda s: queries.count_jobs(s, status)))

    async def job(self, job_id: int) -> JobView:
        def q(s: Session) -> JobView:
            j = s.get(Job, job_id)
            if j is None:
                raise NotFound(f"no job {job_id}")
            return queries.job_view(s, j, queries.Names(s), runs=True)

        return await self._db(self._read(q))

    async def compatible_processings(
        self, version_id: int
    ) -> list[tuple[ProcessingView, str | None]]:
        return await self._db(
            self._read(lambda s: queries.compat_matrix_for_version(s, version_id))
        )

    async def compatible_versions(self, processing_id: int) -> list[tuple[VersionView, str | None]]:
        return await self._db(
            self._read(lambda s: queries.compat_matrix_for_processing(s, processing_id))
        )

    async def version_name_free(self, model: str, name: str) -> bool:
        def q(s: Session) -> bool:
            m = s.exec(select(Model).where(Model.name == model)).first()
            if m is None:
                return True
            return (
                s.exec(
                    select(ModelVersion).where(
                        ModelVersion.model_id == m.id, ModelVersion.name == name
                    )
                ).first()
                is None
            )

        return await self._db(self._read(q))

    # -- catalog services --------------------------------------------------------

    async def import_version(
        self,
        model: str,
        version: str,
        paths: list[Path],
        *,
        framework: str,
        labels: list[str] | None = None,
        tags: list[str] | None = None,
        metrics: dict[str, Any] | None = None,
        description: str = "",
    ) -> VersionView:
        files = catalog.collect_files(paths)
        catalog.check_version_name(version)
        stored = await self._db(lambda: catalog.store_files(self.ws, files))

        def w(s: Session) -> VersionView:
            v = catalog.add_version(
                s,
                self.ws,
                model_name=model,
                version_name=version,
                framework=framework,
                stored=stored,
                labels=labels,
                tags=tags,
                metrics=metrics,
                description=description,
            )
            return queries.version_view(s, v, queries.Names(s), files=True)

        view = await self._db(self._write(w))
        self.events.publish(VersionCreated(view.id, view.model, view.name))
        return view

    async def create_processing(
        self, folder: Path | None = None, *, definition: dict[str, Any] | None = None
    ) -> ProcessingView:
        """A private processing from a folder (processing.toml + Dockerfile), or from
        a definition naming an existing image (no folder: nothing to build)."""

        def go() -> ProcessingView:
            defn = None
            if definition is not None:
                from picsellia_tui.engine.definitions import validate_definition

                defn = validate_definition(definition, "processing from an image")
            row = catalog.create_private(self.ws, folder=folder, defn=defn)
            with self.ws.db.read() as s:
                return queries.processing_view(row, queries.Names(s))

        return await self._db(go)

    async def build_processing(
        self, name: str, *, host: str | None = None, on_line: Callable[[str], None] | None = None
    ) -> tuple[str, str]:
        """Build a processing's image from its folder on a Docker host (the context
        goes over the API, so any host works). Returns (image, image id)."""
        from picsellia_tui.engine.definitions import load_definition
        from picsellia_tui.engine.hosts import connect
        from picsellia_tui.engine.images import build_image

        proc = await self.processing(name)
        if not proc.source_dir:
            raise EngineError(f"{name} was created from an image: there is no folder to build")
        folder = Path(proc.source_dir)
        defn = load_definition(folder)
        ctx, dockerfile = catalog.build_paths(folder, defn, private=proc.visibility == "private")
        hcfg = self.settings.host(host)

        def go() -> str:
            client = connect(hcfg, timeout=1800)
            try:
                return build_image(
                    client,
                    ctx,
                    dockerfile.relative_to(ctx).as_posix(),
                    defn.image,
                    on_line or (lambda _l: None),
                )
            finally:
                client.close()

        image_id = await anyio.to_thread.run_sync(go)
        return defn.image, image_id

    async def image_presence(self, host: str | None = None) -> dict[str, bool]:
        """Which processings' images exist on the host ({} when Docker is not used
        or the host does not answer)."""
        if self.settings.executor != "docker":
            return {}
        from picsellia_tui.engine.images import image_present

        procs = await self.processings()
        hcfg = self.settings.host(host)

        def go() -> dict[str, bool]:
            from picsellia_tui.engine.hosts import connect

            try:
                client = connect(hcfg, timeout=10)
            except ExecutorError:
                return {}
            try:
                return {p.name: image_present(client, p.image) for p in procs}
            finally:
                client.close()

        return await anyio.to_thread.run_sync(go)

    # -- launch, re-run, cancel ------------------------------------------------------

    async def launch(
        self,
        processing: str,
        version_ref: str,
        params: Mapping[str, Any] | None = None,
        *,
        output_version_name: str | None = None,
        host: str | None = None,
    ) -> JobView:
        """Validate everything, then create the job and its first pending run in one
        transaction. Nothing is written when anything is wrong."""
        settings = self.settings
        host_name = settings.host(host).name if settings.executor == "docker" else "local"

        def w(s: Session) -> Job:
            proc = catalog.find_processing(s, processing)
            model, version = catalog.find_version(s, version_ref)
            reason = queries.compatible(s, proc, version)
            if reason:
                raise Incompatible(
                    f"{proc.name} cannot run on {model.name}/{version.name}: {reason}"
                )
            defn = catalog.definition_of(proc)
            no_command = reruns.needs_command(defn, settings.executor)
            if no_command:
                raise InvalidInput(no_command, "command")
            try:
                values = resolve_parameters(defn.parameters, params or {})
            except ParameterError as exc:
                raise InvalidInput(str(exc), exc.field) from None
            plain, secrets = split_secrets(defn.parameters, values)
            out_name = output_version_name
            if defn.output_mode == OutputMode.NEW_MODEL_VERSION:
                if out_name:
                    catalog.check_version_name(out_name)
                    if out_name != catalog.unique_version_name(s, model.id or 0, out_name):
                        raise InvalidInput(
                            f"model {model.name!r} already has a version {out_name!r}",
                            "version_name",
                        )
                else:
                    out_name = catalog.unique_version_name(
                        s, model.id or 0, _default_output_name(version.name, proc.name)
                    )
            else:
                out_name = None
            job = Job(
                processing_id=proc.id or 0,
                processing_name=proc.name,
                processing_snapshot={**defn.model_dump(mode="json"), "source_dir": proc.source_dir},
                image_ref=defn.image,
                target_version_id=version.id or 0,
                parameters=plain,
                secrets_enc=self.ws.encrypt(secrets),
                output_version_name=out_name,
                executor=settings.executor,
                host=host_name,
                launched_by_id=self.ws.user_id,
            )
            s.add(job)
            s.flush()
            repo.add_run(
                s,
                job,
                launched_by_id=self.ws.user_id,
                executor=job.executor,
                host=job.host,
                log_dir=str(self.ws.logs_dir),
                engine_id=self.engine_id,
                image_ref=defn.image,
            )
            return job

        job = await self._db(self._write(w))
        assert job.id is not None
        self.events.publish(JobCreated(job.id))
        self._wake.set()
        return await self.job(job.id)

    async def rerun(self, job_id: int, *, same_image: bool = False) -> RunView:
        """A new attempt of the job with the processing's current definition and image
        (`same_image`: the digest the previous run ran). Refused while a run is pending
        or running, inside the same IMMEDIATE transaction that adds the run."""

        def w(s: Session) -> Run:
            job = s.get(Job, job_id)
            if job is None:
                raise NotFound(f"no job {job_id}")
            current = repo.active_run(s, job_id)
            if current is not None:
                raise RerunRefused(str(repo.ActiveRunExists(job_id, current)))
            image_ref = reruns.prepare_rerun(s, self.ws, job, same_image=same_image)
            try:
                return repo.add_run(
                    s,
                    job,
                    launched_by_id=self.ws.user_id,
                    executor=job.executor,
                    host=job.host,
                    log_dir=str(self.ws.logs_dir),
                    engine_id=self.engine_id,
                    image_ref=image_ref,
                )
            except repo.ActiveRunExists as exc:
                raise RerunRefused(str(exc)) from None

        run = await self._db(self._write(w))
        assert run.id is not None
        self.events.publish(RunChanged(run.id, run.job_id, run.status))
        self._wake.set()
        return await self._run_view(run.id)

    async def cancel(self, job_id: int) -> RunView:
        """Cancel the job's active run: a pending one ends `killed` at once; a running
        one is stopped (SIGTERM, grace, SIGKILL) and its supervisor records `killed`."""

        def w(s: Session) -> tuple[Run, bool]:
            job = s.get(Job, job_id)
            if job is None:
                raise NotFound(f"no job {job_id}")
            run = repo.active_run(s, job_id)
            if run is None:
                raise EngineError(f"job {job_id} has no pending or running run to cancel")
            run.cancel_requested = True
            s.add(run)
            if run.status == RunStatus.PENDING.value and run.ref is None:
                assert run.id is not None
                repo.transition(
                    s,
                    run.id,
                    RunStatus.KILLED,
                    engine_id=self.engine_id,
                    reason="cancelled before it started",
                )
                return run, True
            return run, False

        run, done = await self._db(self._write(w))
        assert run.id is not None
        if done:
            self.events.publish(RunChanged(run.id, run.job_id, RunStatus.KILLED.value))
        elif run.ref:
            ex = self.executor(run.executor, run.host)
            await ex.kill(run.ref, self.settings.cancel_grace_seconds)
        return await self._run_view(run.id)

    async def _run_view(self, run_id: int) -> RunView:
        def q(s: Session) -> RunView:
            r = s.get(Run, run_id)
            if r is None:
                raise NotFound(f"no run {run_id}")
            return queries.single_run_view(s, r, queries.Names(s))

        return await self._db(self._read(q))

    async def run(self, run_id: int) -> RunView:
        return await self._run_view(run_id)

    async def wait_run(
        self, run_id: int, until: Callable[[RunView], bool] | None = None
    ) -> RunView:
        """Until the run is final (or `until` holds). Works across processes."""
        check = until or (lambda r: RunStatus(r.status).is_final)
        stream = self.events.subscribe()
        try:
            while True:
                view = await self._run_view(run_id)
                if check(view):
                    return view
                # Re-read on a change of state, not on each batch of log lines.
                with anyio.move_on_after(0.5):
                    while isinstance(await stream.receive(), LogAppended):
                        pass
        finally:
            stream.close()

    # -- background loops ---------------------------------------------------------------

    async def _watch_database(self) -> None:
        """Tell subscribers when another process commits (PRAGMA data_version)."""
        conn = sqlite3.connect(self.ws.db.path, check_same_thread=False)
        try:
            last = conn.execute("PRAGMA data_version").fetchone()[0]
            while True:
                await anyio.sleep(0.5)
                now = conn.execute("PRAGMA data_version").fetchone()[0]
                if now != last:
                    last = now
                    self.events.publish(ExternalChange())
                    self._external_change = True
                    self._wake.set()
        finally:
            conn.close()

    async def _scheduler_loop(self) -> None:
        while True:
            with anyio.move_on_after(2.0):
                await self._wake.wait()
            self._wake = anyio.Event()
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
        s = self.settings
        hosts = [h.name for h in s.hosts] if s.executor == "docker" else ["local"]

        def w(sess: Session) -> list[int]:
            claimed: list[int] = []
            for host in hosts:
                busy = repo.busy_count(sess, host, s.lease_timeout_seconds)
                runs = repo.claimable_runs(
                    sess, self.engine_id, s.lease_timeout_seconds, s.concurrency - busy, host=host
                )
                claimed += [r.id for r in runs if r.id is not None and r.id not in self._supervised]
            return claimed

        for run_id in await self._db(self._write(w)):
            self._spawn(run_id)

    def _spawn(self, run_id: int) -> None:
        assert self._tg is not None
        scope = anyio.CancelScope()
        self._supervised[run_id] = scope

        async def go() -> None:
            try:
                with scope:
                    await self._supervise(run_id)
            finally:
                self._supervised.pop(run_id, None)
                self._wake.set()  # a slot may have freed

        self._tg.start_soon(go)

    async def _heartbeat_loop(self) -> None:
        while True:
            await anyio.sleep(self.settings.heartbeat_seconds)
            ids = list(self._supervised)
            if not ids:
                continue
            try:
                lost = await self._db(self._write(functools.partial(_beat, self.engine_id, ids)))
            except Exception:
                log.exception("heartbeat failed")
                continue
            for rid in lost:  # another engine took over while we stalled: let it
                scope = self._supervised.pop(rid, None)
                if scope is not None:
                    scope.cancel()

    async def _reconcile_loop(self) -> None:
        last_prune = 0.0
        while True:
            try:
                await self.reconcile()
                if time.monotonic() - last_prune > 3600:
                    last_prune = time.monotonic()
                    await self._db(self.prune_logs)
            except Exception:
                log.exception("reconciliation failed")
            await anyio.sleep(self.settings.reconcile_seconds)

    def prune_logs(self) -> int:
        """Delete the log files of runs that ended more than log_retention_days ago
        (the run rows and their error summaries stay). Returns how many went."""
        days = self.settings.log_retention_days
        if days <= 0:
            return 0
        cutoff = datetime.now(UTC) - timedelta(days=days)
        with self.ws.db.read() as s:
            paths = s.exec(
                select(Run.log_path).where(
                    col(Run.ended_at).is_not(None), col(Run.ended_at) < cutoff
                )
            ).all()
        removed = 0
        for p in paths:
            log_file = Path(p)
            if log_file.exists():
                log_file.unlink()
                removed += 1
            index_path(log_file).unlink(missing_ok=True)
        return removed

    async def reconcile(self) -> list[int]:
        """Adopt running runs nobody supervises (engine killed, app closed)."""
        timeout = self.settings.lease_timeout_seconds

        def w(s: Session) -> list[int]:
            out = []
            for run in repo.orphaned_active_runs(s, self.engine_id, timeout):
                assert run.id is not None
                if run.id not in self._supervised and repo.try_take_lease(
                    s, run.id, self.engine_id, timeout
                ):
                    out.append(run.id)
            return out

        adopted = await self._db(self._write(w))
        for rid in adopted:
            self._spawn(rid)
        self._wake.set()
        return adopted

    # -- supervision of one run ----------------------------------------------------------

    async def _transition(
        self, run_id: int, new: RunStatus, reason: str | None = None, **fields: Any
    ) -> bool:
        def w(s: Session) -> Run:
            return repo.transition(
                s, run_id, new, engine_id=self.engine_id, reason=reason, **fields
            )

        try:
            run = await self._db(self._write(w))
        except repo.TransitionRefused as exc:
            log.info("%s", exc)
            return False
        self.events.publish(RunChanged(run_id, run.job_id, new.value))
        return True

    async def _supervise(self, run_id: int) -> None:
        try:
            await self._supervise_inner(run_id)
        except anyio.get_cancelled_exc_class():
            # Cancelled with the run: a cancel while it was being started ends it
            # `killed` and drops its lease, so the heartbeat stops us mid-start.
            with anyio.CancelScope(shield=True), anyio.move_on_after(30):
                await self._stop_unrecorded(run_id)
            raise
        except ExecutorError as exc:  # a host that refuses us: its reason says it all
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("run %s failed: %s", run_id, reason)
            with anyio.CancelScope(shield=True):
                await self._fail(run_id, reason)
        except Exception as exc:  # the run must still end truthfully
            log.exception("supervising run %s failed", run_id)
            reason = f"engine error: {type(exc).__name__}: {exc}".splitlines()[0]
            with anyio.CancelScope(shield=True):
                await self._fail(run_id, reason)

    async def _stop_unrecorded(self, run_id: int) -> None:
        """Stop a container nobody will ever follow: its run ended (cancelled while
        pending) before the container this engine was starting could be recorded."""
        try:
            run = await self._db(self._read(lambda s: s.get(Run, run_id)))
            if run is None or run.ref is not None or not RunStatus(run.status).is_final:
                return
            ex = self.executor(run.executor, run.host)
            ref = await ex.find(self._run_key(run_id))
            if ref is not None:
                await ex.kill(ref, 0)
                await self._cleanup(ex, ref, failed=False)
        except Exception as exc:
            log.warning("could not stop the container of cancelled run %s: %s", run_id, exc)

    async def _fail(self, run_id: int, reason: str, exit_code: int | None = None) -> None:
        run = await self._db(self._read(lambda s: s.get(Run, run_id)))
        if run is None or RunStatus(run.status).is_final:
            return
        status = RunStatus.KILLED if run.cancel_requested else RunStatus.FAILED
        summary = reason
        tail = await self._db(lambda: error_tail(Path(run.log_path), clean=strip_ansi))
        if tail:
            summary = f"{reason}\n{tail}"
        await self._transition(
            run_id, status, reason=reason, error_summary=summary, exit_code=exit_code
        )

    def _load(self, run_id: int) -> tuple[Run, Job, ModelVersion, list[VersionFile]]:
        with self.ws.db.read() as s:
            run = s.get(Run, run_id)
            assert run is not None
            job = s.get(Job, run.job_id)
            assert job is not None
            version = s.get(ModelVersion, job.target_version_id)
            assert version is not None and version.id is not None
            files = queries.version_files(s, version.id)
            return run, job, version, files

    def _run_key(self, run_id: int) -> str:
        return f"{self.ws.workspace_id[:12]}-{run_id}"

    async def _supervise_inner(self, run_id: int) -> None:
        run, job, version, files = await self._db(lambda: self._load(run_id))
        if RunStatus(run.status).is_final:
            return
        ex = self.executor(job.executor, job.host)
        key = self._run_key(run_id)
        ref = run.ref or await self._with_host_retry(lambda: ex.find(key))
        if run.status == RunStatus.PENDING.value:
            if ref is not None and run.ref is None:
                # Left by an engine that died while starting it. Created but never
                # started: start afresh (not "created but never started" forever).
                state = await self._with_host_retry(lambda: ex.inspect(ref))
                if state.status == "created":
                    await self._with_host_retry(lambda: ex.remove(ref))
                    ref = None
            if run.cancel_requested and ref is None:
                await self._transition(run_id, RunStatus.KILLED, "cancelled before it started")
                return
            started_here = ref is None
            if ref is None:
                ref = await self._start(run, job, version, files, ex, key)
                if ref is None:
                    return
            if not await self._transition(run_id, RunStatus.RUNNING, "container started", ref=ref):
                await self._stop_unrecorded(run_id)  # cancelled while we started it
                return
            if run.cancel_requested and not started_here:
                # Cancelled while its engine died starting it: the kill never reached it.
                await self._with_host_retry(
                    lambda: ex.kill(ref, self.settings.cancel_grace_seconds)
                )
        elif ref is None:
            await self._fail(
                run_id,
                f"its {_what(job.executor)} vanished: nothing with run label {key} on {job.host}",
            )
            return
        elif run.ref is None:
            await self._db(self._write(lambda s: _set_ref(s, run_id, ref)))
        state = await self._with_host_retry(lambda: ex.inspect(ref))
        if state.status == "missing":
            await self._fail(
                run_id, f"its {_what(job.executor)} vanished: {ref} no longer exists on {job.host}"
            )
            return
        await self._follow_to_end(run_id, job, ex, ref)

    async def _start(
        self,
        run: Run,
        job: Job,
        version: ModelVersion,
        files: list[VersionFile],
        ex: Executor,
        key: str,
    ) -> str | None:
        assert run.id is not None
        try:
            # The image as it is now on the host (a rebuilt tag resolves to the new
            # build), or the digest a re-run pinned; the run records what it ran.
            image = run.image_ref or job.image_ref
            digest = await self._with_host_retry(
                lambda: ex.resolve_image(image, processing=job.processing_name)
            )
            if ex.kind == "docker":
                await self._db(self._write(lambda s: _set_digest(s, run.id or 0, digest)))
            spec = await self._db(lambda: self._spec(run, job, version, files, digest, key))
            return await ex.start(spec)
        except (ExecutorError, EngineError) as exc:
            await self._fail(run.id, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return None

    def _spec(
        self,
        run: Run,
        job: Job,
        version: ModelVersion,
        files: list[VersionFile],
        image: str,
        key: str,
    ) -> RunSpec:
        assert run.id is not None and job.id is not None
        snap = job.processing_snapshot
        model = None
        with self.ws.db.read() as s:
            model = s.get(Model, version.model_id)
        assert model is not None
        secrets = self.ws.decrypt(job.secrets_enc)
        inputs = []
        for f in files:
            self.ws.blobs.verify(f.sha256)
            inputs.append(InputFile(f.path, self.ws.blobs.path_for(f.sha256)))
        context = {
            "job_id": str(job.id),
            "run_id": str(run.id),
            "attempt": run.attempt,
            "organization_id": self.ws.organization_id,
            "organization": self.settings.organization,
            "processing": {k: snap.get(k) for k in ("name", "version", "task", "output_mode")},
            "parameters": job.parameters,
            "target": {
                "type": "model_version",
                "model": model.name,
                "version": version.name,
                "framework": version.framework,
                "labels": version.labels,
                "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in files],
            },
            "output_version_name": job.output_version_name,
            "paths": {"inputs": "/picsellia/inputs", "outputs": "/picsellia/outputs"},
        }
        env = {
            "job_id": str(job.id),
            "run_id": str(run.id),
            "organization_id": self.ws.organization_id,
            "PICSELLIA_CONTEXT": "/picsellia/context.json",
        }
        env.update({secret_env_name(k): v for k, v in secrets.items()})
        cons = snap.get("constraints", {})
        cfg = self.settings
        mem = cons.get("memory") or cfg.default_memory
        src = snap.get("source_dir")
        return RunSpec(
            # The executor labels the container with it and `find(key)` looks for it:
            # the key (workspace + run), not the bare run id, which every workspace has.
            run_id=key,
            job_id=str(job.id),
            attempt=run.attempt,
            name=f"ptui-{key}",
            image=image,
            command=list(snap.get("command") or []),
            entrypoint=list(snap["entrypoint"]) if snap.get("entrypoint") else None,
            env=env,
            context_json=json.dumps(context, indent=2).encode(),
            inputs=inputs,
            labels={
                "picsellia-tui.run_id": key,
                "picsellia-tui.job_id": str(job.id),
                "picsellia-tui.workspace": self.ws.workspace_id,
                "picsellia-tui.engine_id": self.engine_id,
            },
            limits=Limits(
                cpu=cons.get("cpu") or cfg.default_cpu,
                memory_bytes=parse_memory(mem) if mem else None,
                pids=cfg.pids_limit,
                gpu=bool(cons.get("gpu")),
                network=bool(cons.get("network")),
            ),
            processing_dir=Path(src) if src else None,
            work_dir=self.ws.scratch_dir / f"run-{run.id}",
        )

    async def _with_host_retry(self, fn: Callable[[], Any]) -> Any:
        """Retry while the host is unreachable (daemon restart, ssh drop); not when it
        refuses us (bad certificate, unknown host key): waiting cannot fix that."""
        from picsellia_tui.engine.executors.base import HostRefused, HostUnreachable

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

    async def _follow_to_end(self, run_id: int, job: Job, ex: Executor, ref: str) -> None:
        run = await self._db(self._read(lambda s: s.get(Run, run_id)))
        assert run is not None
        secrets = [v for v in self.ws.decrypt(job.secrets_enc).values() if len(v) >= 4]
        log_path = Path(run.log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        writer = await self._db(lambda: LogWriter(log_path))
        try:
            try:
                exit_code, log_note = await self._capture(run_id, job, ex, ref, writer, secrets)
            except BaseExceptionGroup as group:
                raise _unwrap(group) from None
        except ExecutorError as exc:
            state = None
            try:
                state = await ex.inspect(ref)
            except ExecutorError:
                pass
            code = state.exit_code if state and state.status == "exited" else None
            await self._fail(run_id, f"lost the run: {exc}", exit_code=code)
            return
        finally:
            with anyio.CancelScope(shield=True):
                await self._db(writer.close)
        if log_note:
            where = f"container {ref[:12]}" if ex.kind == "docker" else f"run folder {ref}"
            log_note += f"; the whole log is kept in {where}"
        await self._finish(run_id, job, ex, ref, exit_code, log_note)

    async def _capture(
        self, run_id: int, job: Job, ex: Executor, ref: str, writer: LogWriter, secrets: list[str]
    ) -> tuple[int, str | None]:
        """Store log lines as they come while waiting for the exit beside them.
        Returns the exit code, and why the log is incomplete if it is (a full disk)."""
        job_id = job.id or 0

        async def on_stall(why: str | None) -> None:
            # The run goes on (its container is the truth); the user sees why its log
            # stopped, in the run's summary, until the lines can be stored again.
            if why:
                log.warning("run %s: %s", run_id, why)
            note = f"{why} (the run goes on; its log resumes once there is room)" if why else None
            await self._db(self._write(lambda s: _set_summary(s, run_id, note)))
            self.events.publish(RunChanged(run_id, job_id, RunStatus.RUNNING.value))

        sink = LogSink(
            writer,
            secrets,
            lambda n: self.events.publish(LogAppended(run_id, job_id, n)),
            self._limiter,
            on_stall=on_stall,
        )

        # An executor that follows in batches (docker) resumes by lines per stream:
        # its live follow stamps lines on receipt, which a replay cannot reproduce.
        follow_batches = getattr(ex, "follow_log_batches", None)
        by_counts = follow_batches is not None

        def stream(
            since: int | None, skip: dict[Stream, int] | None
        ) -> AsyncIterator[list[LogLine]]:
            if follow_batches is not None:
                return cast(
                    AsyncIterator[list[LogLine]], follow_batches(ref, since_ns=since, skip=skip)
                )
            return one_line_batches(ex.follow_logs(ref, since_ns=since))

        followed_to_end = anyio.Event()

        async def follow() -> None:
            await self._with_host_retry(lambda: sink.follow(stream, by_counts=by_counts))
            followed_to_end.set()

        flushing = anyio.CancelScope()

        async def keep_flushing() -> None:
            with flushing:
                await sink.run()

        async with anyio.create_task_group() as tg:
            tg.start_soon(keep_flushing)
            async with anyio.create_task_group() as follow_tg:
                follow_tg.start_soon(follow)
                exit_code: int = await self._with_host_retry(lambda: ex.wait(ref))
                # A stream that hangs after the exit must not hang the run; one still
                # delivering (the backlog of a flood) is not cut while it makes progress.
                await _until_set_or_idle(followed_to_end, sink, DRAIN_GRACE_S)
                follow_tg.cancel_scope.cancel()
            if not followed_to_end.is_set() and sink.stalled is None:
                # The run has exited, so a fresh stream replays the rest and ends.
                replayed = anyio.Event()

                async def replay() -> None:
                    await sink.follow(stream, by_counts=by_counts)
                    replayed.set()

                async with anyio.create_task_group() as replay_tg:
                    replay_tg.start_soon(replay)
                    await _until_set_or_idle(replayed, sink, REPLAY_IDLE_S)
                    replay_tg.cancel_scope.cancel()
            flushing.cancel()
            # A disk that stays full must not keep a finished run open forever.
            complete = await sink.flush(give_up_after=LOG_GIVE_UP_S)
            tg.cancel_scope.cancel()
        return exit_code, None if complete else f"log incomplete: {sink.stalled}"

    async def _finish(
        self,
        run_id: int,
        job: Job,
        ex: Executor,
        ref: str,
        exit_code: int,
        log_note: str | None = None,
    ) -> None:
        run = await self._db(self._read(lambda s: s.get(Run, run_id)))
        assert run is not None
        if run.cancel_requested:
            await self._transition(
                run_id,
                RunStatus.KILLED,
                "cancelled",
                exit_code=exit_code,
                error_summary="cancelled by the user" + (f"; {log_note}" if log_note else ""),
            )
            await self._cleanup(ex, ref, failed=False, keep=bool(log_note))
            return
        if exit_code != 0:
            note = f" ({log_note})" if log_note else ""
            await self._fail(run_id, f"exited with code {exit_code}{note}", exit_code=exit_code)
            await self._cleanup(ex, ref, failed=True, keep=bool(log_note))
            return
        mode = job.processing_snapshot.get("output_mode", OutputMode.NONE.value)
        if mode == OutputMode.NONE.value:
            await self._transition(
                run_id, RunStatus.SUCCEEDED, "exited 0", exit_code=0, error_summary=log_note
            )
            await self._cleanup(ex, ref, failed=False, keep=bool(log_note))
            return
        dest = self.ws.scratch_dir / f"outputs-{run_id}-{uuid.uuid4().hex[:6]}"
        refused: Exception | None = None
        version = None
        try:
            await ex.collect_outputs(ref, dest, self.settings.output_quota_bytes)
            version = await self._db(lambda: self._ingest(run_id, job, dest, mode, log_note))
        except (ExecutorError, EngineError) as exc:
            refused = exc
        finally:
            # Gone before the final status is written: nothing half-kept after it.
            await self._db(lambda: shutil.rmtree(dest, ignore_errors=True))
        if refused is not None:
            await self._fail(run_id, f"outputs refused: {refused}", exit_code=0)
            await self._cleanup(ex, ref, failed=True, keep=bool(log_note))
            return
        if version is not None:
            self.events.publish(VersionCreated(*version))
        self.events.publish(RunChanged(run_id, job.id or 0, RunStatus.SUCCEEDED.value))
        await self._cleanup(ex, ref, failed=False, keep=bool(log_note))

    def _ingest(
        self, run_id: int, job: Job, outputs: Path, mode: str, log_note: str | None = None
    ) -> tuple[int, str, str] | None:
        """Outputs into the blob store, the version row and `succeeded`: one
        transaction, so a crash at any point ingests them once, or not at all."""
        result = catalog.read_result(outputs)
        files = [
            (p.relative_to(outputs).as_posix(), p)
            for p in sorted(outputs.rglob("*"))
            if p.is_file() and p.relative_to(outputs).as_posix() != "result.json"
        ]
        stored = catalog.store_files(self.ws, files)

        def w(s: Session) -> tuple[int, str, str] | None:
            run = s.get(Run, run_id)
            assert run is not None
            if run.outputs_ingested or RunStatus(run.status).is_final:
                return None
            target = s.get(ModelVersion, job.target_version_id)
            assert target is not None and target.id is not None
            model = s.get(Model, target.model_id)
            assert model is not None and model.id is not None
            if mode == OutputMode.UPDATE_INPUT.value:
                _update_version(s, target, stored, result)
                version = target
            else:
                if not stored:
                    raise InvalidInput("the run wrote no output files", "outputs")
                name = catalog.unique_version_name(
                    s, model.id, job.output_version_name or f"{target.name}-job{job.id}"
                )
                version = catalog.add_version(
                    s,
                    self.ws,
                    model_name=model.name,
                    version_name=name,
                    framework=result.get("framework") or target.framework,
                    stored=stored,
                    labels=result.get("labels") or target.labels,
                    tags=result.get("tags"),
                    metrics=result.get("metrics"),
                    description=f"{job.processing_name} on {model.name}/{target.name}",
                    parent_id=target.id,
                    origin_job_id=job.id,
                )
            assert version.id is not None
            run.outputs_ingested = True
            s.add(run)
            repo.transition(
                s,
                run_id,
                RunStatus.SUCCEEDED,
                engine_id=self.engine_id,
                reason="outputs ingested",
                exit_code=0,
                output_version_id=version.id,
                error_summary=log_note,
            )
            return version.id, model.name, version.name

        return self.ws.db.write_retry(w)

    async def _cleanup(self, ex: Executor, ref: str, failed: bool, keep: bool = False) -> None:
        if keep or (failed and self.settings.keep_failed_containers):
            return
        try:
            await ex.remove(ref)
        except ExecutorError as exc:
            log.warning("could not remove %s: %s", ref, exc)


async def _until_set_or_idle(done: anyio.Event, sink: LogSink, idle_s: float) -> None:
    """Wait for `done`; give up once `idle_s` pass with no line received or stored
    and no batch being written (a hung stream, not a slow drain)."""
    seen = sink.progress
    while not done.is_set():
        with anyio.move_on_after(idle_s):
            await done.wait()
        if sink.progress == seen and not sink.writing:
            return
        seen = sink.progress


def _unwrap(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf error of a task group's failure (an executor error if any)."""
    match = group.subgroup(ExecutorError)
    pick: BaseException = match if match is not None else group
    while isinstance(pick, BaseExceptionGroup):
        pick = pick.exceptions[0]
    return pick


def _what(kind: str) -> str:
    return "container" if kind == "docker" else "process"


def _beat(owner: str, ids: list[int], s: Session) -> list[int]:
    return repo.heartbeat(s, owner, ids)


def _set_summary(s: Session, run_id: int, summary: str | None) -> None:
    run = s.get(Run, run_id)
    if run is not None and not RunStatus(run.status).is_final:
        run.error_summary = summary
        s.add(run)


def _set_ref(s: Session, run_id: int, ref: str) -> None:
    run = s.get(Run, run_id)
    assert run is not None
    run.ref = ref
    s.add(run)


def _set_digest(s: Session, run_id: int, digest: str) -> None:
    run = s.get(Run, run_id)
    assert run is not None
    run.image_digest = digest
    s.add(run)


def _update_version(
    s: Session, v: ModelVersion, stored: list[tuple[str, str, int]], result: dict[str, Any]
) -> None:
    assert v.id is not None
    existing = {f.path: f for f in queries.version_files(s, v.id)}
    for rel, sha, size in stored:
        if rel in existing:
            existing[rel].sha256, existing[rel].size = sha, size
            s.add(existing[rel])
        else:
            s.add(VersionFile(version_id=v.id, path=rel, sha256=sha, size=size))
    s.flush()
    v.size_bytes = sum(f.size for f in queries.version_files(s, v.id))
    v.tags = sorted(set(v.tags) | set(result.get("tags") or []))
    v.metrics = {**v.metrics, **(result.get("metrics") or {})}
    s.add(v)


def _default_output_name(version: str, processing: str) -> str:
    short = processing.split("-")[-1] if "-" in processing else processing
    name = f"{version}-{short}"
    return name[:64]
