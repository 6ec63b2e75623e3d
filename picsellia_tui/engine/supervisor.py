"""Supervision of one run, from claim to final status: start its container (or
process) from the job's spec, follow it to its exit while its log is captured,
then record the outcome (outputs ingested into a version, or why it failed) and
remove what it leaves. Anything unexpected still ends the run truthfully."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from sqlmodel import Session

from picsellia_tui.engine import queries
from picsellia_tui.engine.capture import capture_log
from picsellia_tui.engine.errors import EngineError
from picsellia_tui.engine.events import RunChanged, VersionCreated
from picsellia_tui.engine.executors.base import Executor, ExecutorError, HostUnreachable
from picsellia_tui.engine.ingest import ingest_outputs
from picsellia_tui.engine.logtext import strip_ansi
from picsellia_tui.engine.picsellia_api.runs import uses_api
from picsellia_tui.engine.retry import host_windows, with_host_retry
from picsellia_tui.engine.runspec import build_spec
from picsellia_tui.engine.runtime import Runtime
from picsellia_tui.humanize import first_line
from picsellia_tui.storage import repo
from picsellia_tui.storage.domain import OutputMode, RunStatus
from picsellia_tui.storage.logfile.search import error_tail
from picsellia_tui.storage.logfile.writer import LogWriter
from picsellia_tui.storage.models import Job, ModelVersion, Run, VersionFile

log = logging.getLogger("picsellia_tui.engine")
CLEANUP_S = 60.0  # removing what a finished run leaves, at most


class RunSupervisor:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def supervise(self, run_id: int) -> None:
        cancelled = False
        try:
            await self._supervise_inner(run_id)
        except anyio.get_cancelled_exc_class():
            cancelled = True
            # Cancelled with the run: a cancel while it was being started ends it
            # `killed` and drops its lease, so the heartbeat stops us mid-start.
            with anyio.CancelScope(shield=True), anyio.move_on_after(30):
                await self._stop_unrecorded(run_id)
            raise
        except ExecutorError as exc:  # a host that refuses us: its reason says it all
            reason = first_line(exc)
            log.warning("run %s failed: %s", run_id, reason)
            with anyio.CancelScope(shield=True):
                await self._fail(run_id, reason)
        except Exception as exc:  # the run must still end truthfully
            log.exception("supervising run %s failed", run_id)
            reason = first_line(f"engine error: {type(exc).__name__}: {exc}")
            with anyio.CancelScope(shield=True):
                await self._fail(run_id, reason)
        finally:
            # Ended: the token stops working. Not when cancelled (the engine leaves,
            # the run goes on): its calls are then refused at the connection, which
            # the SDK retries, until the next engine serves the same token.
            if not cancelled:
                self.rt.api.revoke(run_id)

    async def _transition(
        self, run_id: int, new: RunStatus, reason: str | None = None, **fields: Any
    ) -> bool:
        def w(s: Session) -> Run:
            return repo.transition(
                s, run_id, new, engine_id=self.rt.engine_id, reason=reason, **fields
            )

        try:
            run = await self.rt.db(self.rt.write(w))
        except repo.TransitionRefused as exc:
            log.info("%s", exc)
            return False
        self.rt.events.publish(RunChanged(run_id, run.job_id, new.value))
        return True

    async def _stop_unrecorded(self, run_id: int) -> None:
        """Stop a container nobody will ever follow: its run ended (cancelled while
        pending) before the container this engine was starting could be recorded."""
        try:
            run = await self.rt.db(self.rt.read(lambda s: s.get(Run, run_id)))
            if run is None or run.ref is not None or not RunStatus(run.status).is_final:
                return
            ex = self.rt.executor(run.executor, run.host)
            ref = await ex.find(self._run_key(run_id))
            if ref is not None:
                await ex.kill(ref, 0)
                await self._cleanup(ex, ref, failed=False)
        except Exception as exc:
            log.warning("could not stop the container of cancelled run %s: %s", run_id, exc)

    async def _fail(
        self, run_id: int, reason: str, exit_code: int | None = None, **times: Any
    ) -> None:
        run = await self.rt.db(self.rt.read(lambda s: s.get(Run, run_id)))
        if run is None or RunStatus(run.status).is_final:
            return
        status = RunStatus.KILLED if run.cancel_requested else RunStatus.FAILED
        summary = reason
        tail = await self.rt.db(lambda: error_tail(Path(run.log_path), clean=strip_ansi))
        if tail:
            summary = f"{reason}\n{tail}"
        await self._transition(
            run_id, status, reason=reason, error_summary=summary, exit_code=exit_code, **times
        )

    def _load(self, run_id: int) -> tuple[Run, Job, ModelVersion, list[VersionFile]]:
        with self.rt.ws.db.read() as s:
            run = s.get(Run, run_id)
            assert run is not None
            job = s.get(Job, run.job_id)
            assert job is not None
            version = s.get(ModelVersion, job.target_version_id)
            assert version is not None and version.id is not None
            files = queries.version_files(s, version.id)
            return run, job, version, files

    def _run_key(self, run_id: int) -> str:
        return f"{self.rt.ws.workspace_id[:12]}-{run_id}"

    async def _supervise_inner(self, run_id: int) -> None:
        run, job, version, files = await self.rt.db(lambda: self._load(run_id))
        if RunStatus(run.status).is_final:
            return
        ex = self.rt.executor(job.executor, job.host)
        key = self._run_key(run_id)
        win = host_windows(self.rt.settings, job.host)
        # A run not started yet gets its host's connect_timeout to reach it (a
        # host that is down fails it at once, saying so); one whose container
        # exists waits out a lost host for the longer reconnect window.
        pending = run.status == RunStatus.PENDING.value
        reach = win.start if pending else win.lost
        try:
            ref = run.ref or await with_host_retry(lambda: ex.find(key), reach)
        except HostUnreachable as exc:
            if not pending:
                raise
            await self._fail(run_id, self._unreachable(run_id, job, exc))
            return
        if pending:
            if ref is not None and run.ref is None:
                # Left by an engine that died while starting it. Created but never
                # started: start afresh (not "created but never started" forever).
                left = ref
                state = await with_host_retry(lambda: ex.inspect(left), win.start)
                if state.status == "created":
                    await with_host_retry(lambda: ex.remove(left), win.start)
                    ref = None
            if run.cancel_requested and ref is None:
                await self._transition(run_id, RunStatus.KILLED, "cancelled before it started")
                return
            started_here = ref is None
            if ref is None:
                ref = await self._start(run, job, version, files, ex, key)
                if ref is None:
                    return
            started = "container started"
            if ex.kind == "swarm":
                node = (await with_host_retry(lambda: ex.inspect(ref), win.lost)).node
                started = f"{queries.NODE_REASON}{node or '?'}"
            if not await self._transition(run_id, RunStatus.RUNNING, started, ref=ref):
                await self._stop_unrecorded(run_id)  # cancelled while we started it
                return
            if run.cancel_requested and not started_here:
                # Cancelled while its engine died starting it: the kill never reached it.
                grace = self.rt.settings.cancel_grace_seconds
                await with_host_retry(lambda: ex.kill(ref, grace), win.lost)
        elif ref is None:
            await self._fail(
                run_id,
                f"its {_what(job.executor)} vanished: nothing with run label {key} on {job.host}",
            )
            return
        elif run.ref is None:
            await self.rt.db(self.rt.write(lambda s: _set_ref(s, run_id, ref)))
        state = await with_host_retry(lambda: ex.inspect(ref), win.lost)
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
            digest = await with_host_retry(
                lambda: ex.resolve_image(image, processing=job.processing_name),
                host_windows(self.rt.settings, job.host).start,
            )
            if ex.kind in ("docker", "swarm"):
                await self.rt.db(self.rt.write(lambda s: _set_digest(s, run.id or 0, digest)))
            rt = self.rt
            api = None
            if uses_api(job) or ex.kind == "swarm":
                # A swarm run's files travel through the API (its file channel);
                # the Picsellia environment only for processings that use it.
                access, env = await rt.api.prepare(run, job, listen=self._listen(job))
                api = (access, env if uses_api(job) else {})
            spec = await rt.db(
                lambda: build_spec(
                    rt.ws, rt.settings, rt.engine_id, run, job, version, files, digest, key, api
                )
            )
            run_id = run.id
            spec = dataclasses.replace(
                spec, on_pending=lambda why: self._pending_reason(run_id, job.id or 0, why)
            )
            return await ex.start(spec)
        except HostUnreachable as exc:
            await self._fail(run.id, self._unreachable(run.id, job, exc))
            return None
        except (ExecutorError, EngineError) as exc:
            await self._fail(run.id, first_line(exc))
            return None

    def _unreachable(self, run_id: int, job: Job, exc: HostUnreachable) -> str:
        """Why a run could not start on its host, naming the host as configured
        (said in the engine's log too)."""
        reason = first_line(f"cannot reach host {job.host}: {exc}")
        log.warning("run %s failed: %s", run_id, reason)
        return reason

    def _listen(self, job: Job) -> tuple[str, int] | None:
        """Where a cluster's tasks reach the engine's API (a swarm host's)."""
        if self.rt.settings.executor != "docker" or job.executor != "docker":
            return None
        try:
            return self.rt.settings.host(job.host).listen_address
        except Exception:
            return None

    async def _pending_reason(self, run_id: int, job_id: int, why: str | None) -> None:
        """A run waiting for a cluster node says why on its summary (then clears it)."""

        def w(s: Session) -> None:
            run = s.get(Run, run_id)
            if run is not None and run.status == RunStatus.PENDING.value:
                run.error_summary = why
                s.add(run)

        await self.rt.db(self.rt.write(w))
        self.rt.events.publish(RunChanged(run_id, job_id, RunStatus.PENDING.value))

    async def _follow_to_end(self, run_id: int, job: Job, ex: Executor, ref: str) -> None:
        run = await self.rt.db(self.rt.read(lambda s: s.get(Run, run_id)))
        assert run is not None
        secrets = [v for v in self.rt.ws.decrypt(job.secrets_enc).values() if len(v) >= 4]
        if uses_api(job) or ex.kind == "swarm":
            # Again after an engine restart (same token); the token is masked like a secret.
            _, api_env = await self.rt.api.prepare(run, job, listen=self._listen(job))
            secrets.append(api_env["api_token"])
        log_path = Path(run.log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        writer = await self.rt.db(lambda: LogWriter(log_path))
        try:
            try:
                exit_code, log_note = await capture_log(
                    self.rt, run_id, job, ex, ref, writer, secrets
                )
            except BaseExceptionGroup as group:
                raise _unwrap(group) from None
        except ExecutorError as exc:
            state = None
            try:
                state = await ex.inspect(ref)
            except ExecutorError:
                pass
            code = state.exit_code if state and state.status == "exited" else None
            with anyio.CancelScope(shield=True):
                await self._fail(run_id, f"lost the run: {exc}", exit_code=code)
                if ex.kind == "swarm":
                    # The run is over for us (its node lost, its task rejected):
                    # its service goes, so its task does not come back to life
                    # with the node, and its files folder with it.
                    await self._cleanup(ex, ref, failed=True)
            return
        finally:
            with anyio.CancelScope(shield=True):
                await self.rt.db(writer.close)
        if log_note:
            where = {"docker": "container", "swarm": "service"}.get(ex.kind, "run folder")
            where = f"{where} {ref[:12] if ex.kind != 'process' else ref}"
            log_note += f"; the whole log is kept in {where}"
        await self._finish(run_id, job, ex, ref, exit_code, log_note)

    async def _exec_state(self, ex: Executor, ref: str) -> tuple[bool, dict[str, Any]]:
        """(killed for lack of memory, the run's own start and end times). A run
        adopted by a later engine ended when its container did, not when the
        engine noticed."""
        try:
            state = await ex.inspect(ref)
        except ExecutorError:
            return False, {}
        times = {
            k: datetime.fromtimestamp(ns / 1e9, UTC)
            for k, ns in (("started_at", state.started_ns), ("ended_at", state.finished_ns))
            if ns
        }
        return state.error == "OOMKilled", times

    async def _finish(
        self,
        run_id: int,
        job: Job,
        ex: Executor,
        ref: str,
        exit_code: int,
        log_note: str | None = None,
    ) -> None:
        run = await self.rt.db(self.rt.read(lambda s: s.get(Run, run_id)))
        assert run is not None
        # What the processing reported through the Picsellia API, if it disagrees
        # with the exit code (which decides): said on the run.
        api_note = await self.rt.api.disagreement(run_id, exit_code) if uses_api(job) else None
        summary = "; ".join(n for n in (log_note, api_note) if n) or None
        oom, times = await self._exec_state(ex, ref)
        mode = job.processing_snapshot.get("output_mode", OutputMode.NONE.value)
        dest: Path | None = None
        refused: Exception | None = None
        if not run.cancel_requested and exit_code == 0 and mode != OutputMode.NONE.value:
            dest = self.rt.ws.scratch_dir / f"outputs-{run_id}-{uuid.uuid4().hex[:6]}"
            try:
                await ex.collect_outputs(ref, dest, self.rt.settings.output_quota_bytes)
            except ExecutorError as exc:
                refused = exc
            except Exception as exc:  # outputs are the run's code's: never an engine error
                log.exception("run %s: outputs could not be taken", run_id)
                refused = EngineError(f"{type(exc).__name__}: {str(exc)[:200]}")
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self.rt.db(lambda: shutil.rmtree(dest, ignore_errors=True))
                raise
        # From here the run gets its final status, then what it leaves is removed:
        # an engine that stops meanwhile (idle exit, Ctrl-C, an app or a command
        # that ends) waits for both. Cancelled in between, the status was written
        # and the service, container or files folder stayed for good (nothing
        # looks at a final run again).
        with anyio.CancelScope(shield=True):
            await self._settle(
                run, job, ex, ref, exit_code, log_note, summary, oom, times, mode, dest, refused
            )

    async def _settle(
        self,
        run: Run,
        job: Job,
        ex: Executor,
        ref: str,
        exit_code: int,
        log_note: str | None,
        summary: str | None,
        oom: bool,
        times: dict[str, Any],
        mode: str,
        dest: Path | None,
        refused: Exception | None,
    ) -> None:
        """The final status, then the cleanup (shielded by the caller)."""
        assert run.id is not None
        run_id = run.id
        keep = bool(log_note)
        if run.cancel_requested:
            await self._transition(
                run_id,
                RunStatus.KILLED,
                "cancelled",
                exit_code=exit_code,
                error_summary="cancelled by the user" + (f"; {log_note}" if log_note else ""),
                **times,
            )
            await self._cleanup(ex, ref, failed=False, keep=keep)
            return
        if exit_code != 0:
            note = f" ({summary})" if summary else ""
            reason = f"exited with code {exit_code}"
            if oom:
                cons = job.processing_snapshot.get("constraints") or {}
                limit = cons.get("memory") or self.rt.settings.default_memory
                reason = f"killed: out of memory (limit {limit})"
            await self._fail(run_id, f"{reason}{note}", exit_code=exit_code, **times)
            await self._cleanup(ex, ref, failed=True, keep=keep)
            return
        if dest is None:
            # A processing using the Picsellia API makes its versions itself: the
            # run's output is the last one it created.
            made = await self.rt.api.created_version(run, job) if uses_api(job) else None
            await self._transition(
                run_id,
                RunStatus.SUCCEEDED,
                "exited 0",
                exit_code=0,
                error_summary=summary,
                **({"output_version_id": made} if made is not None else {}),
                **times,
            )
            await self._cleanup(ex, ref, failed=False, keep=keep)
            return
        version = None
        if refused is None:
            try:
                rt = self.rt
                version = await rt.db(
                    lambda: ingest_outputs(
                        rt.ws, rt.engine_id, run_id, job, dest, mode, summary, times
                    )
                )
            except EngineError as exc:
                refused = exc
            except Exception as exc:  # outputs are the run's code's: never an engine error
                log.exception("run %s: outputs could not be taken", run_id)
                refused = EngineError(f"{type(exc).__name__}: {str(exc)[:200]}")
        # Gone before the final status is written: nothing half-kept after it.
        await self.rt.db(lambda: shutil.rmtree(dest, ignore_errors=True))
        if refused is not None:
            await self._fail(run_id, f"outputs refused: {refused}", exit_code=0, **times)
            await self._cleanup(ex, ref, failed=True, keep=keep)
            return
        if version is not None:
            self.rt.events.publish(VersionCreated(*version))
        self.rt.events.publish(RunChanged(run_id, job.id or 0, RunStatus.SUCCEEDED.value))
        await self._cleanup(ex, ref, failed=False, keep=keep)

    async def _cleanup(self, ex: Executor, ref: str, failed: bool, keep: bool = False) -> None:
        """Remove what the run leaves (container, service, files folder), at most
        CLEANUP_S: a host that stops answering must not hold an engine that stops."""
        if keep or (failed and self.rt.settings.keep_failed_containers):
            return
        with anyio.move_on_after(CLEANUP_S) as scope:
            try:
                await ex.remove(ref)
            except ExecutorError as exc:
                log.warning("could not remove %s: %s", ref, exc)
        if scope.cancelled_caught:
            log.warning("could not remove %s in %g s; it stays", ref, CLEANUP_S)


def _unwrap(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf error of a task group's failure (an executor error if any)."""
    match = group.subgroup(ExecutorError)
    pick: BaseException = match if match is not None else group
    while isinstance(pick, BaseExceptionGroup):
        pick = pick.exceptions[0]
    return pick


def _what(kind: str) -> str:
    return "container" if kind == "docker" else "process"


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
