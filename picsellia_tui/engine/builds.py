"""Image builds the engine runs for the app and the command line.

A build runs in a worker thread started from the engine's task group, so it
outlives the call that started it: the app starts one, shows its log while it
runs, and may cancel it. Each build writes its output to a log file in the runs'
log format (<logs>/builds/), which the app shows in the same log pane as a run's.
Cancelling closes the build's connection to the Docker daemon, which stops the
build there (its running step is killed). Builds live in the engine's memory: an
engine that stops cancels the builds it runs.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import anyio
from anyio.abc import TaskGroup

from picsellia_tui.engine import catalog
from picsellia_tui.engine.definitions import load_definition
from picsellia_tui.engine.errors import EngineError, NotFound
from picsellia_tui.engine.events import BuildEnded
from picsellia_tui.engine.executors.base import ExecutorError, LogLine
from picsellia_tui.engine.hosts import HostConfig
from picsellia_tui.engine.images import BuildCancel, BuildCancelled
from picsellia_tui.engine.runtime import Runtime
from picsellia_tui.engine.views import BuildView, ProcessingView
from picsellia_tui.humanize import first_line
from picsellia_tui.storage.logfile.writer import LogWriter

log = logging.getLogger("picsellia_tui.engine.builds")
CANCEL_WAIT_S = 30.0  # how long `cancel` waits for the build's thread to end


@dataclass
class _Build:
    view: BuildView
    cancel: BuildCancel = field(default_factory=BuildCancel)
    done: anyio.Event = field(default_factory=anyio.Event)


class Builds:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._builds: dict[int, _Build] = {}
        self._ids = itertools.count(1)

    def _get(self, build_id: int) -> _Build:
        build = self._builds.get(build_id)
        if build is None:
            raise NotFound(f"no build {build_id} (builds are kept while the engine runs)")
        return build

    def view(self, build_id: int) -> BuildView:
        return self._get(build_id).view

    async def start(
        self,
        tg: TaskGroup,
        proc: ProcessingView,
        host: str | None,
        on_line: Callable[[str], None] | None = None,
    ) -> BuildView:
        """Check what can be checked at once (folder, definition, build context,
        host), then start the build and return; `wait` or `BuildEnded` tell its end."""
        if not proc.source_dir:
            raise EngineError(
                f"{proc.name} was registered from an image: there is no folder to build"
            )
        folder = Path(proc.source_dir)
        defn = await anyio.to_thread.run_sync(load_definition, folder)
        ctx, dockerfile = catalog.build_paths(folder, defn, private=proc.visibility == "private")
        hcfg = self._rt.settings.host(host)
        for other in self._builds.values():
            if other.view.processing == proc.name and other.view.active:
                raise EngineError(
                    f"{proc.name} is being built already (build {other.view.id} on "
                    f"{other.view.host}); cancel it first"
                )
        build_id = next(self._ids)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self._rt.ws.logs_dir / "builds" / f"{proc.name}-{stamp}-{build_id}.log"
        build = _Build(
            BuildView(
                id=build_id,
                processing=proc.name,
                image=defn.image,
                host=hcfg.name,
                log_path=str(path),
                status="running",
                started_at=datetime.now(UTC),
            )
        )
        writer = LogWriter(path)  # the file exists once start returns: the app opens it
        self._builds[build_id] = build
        tg.start_soon(
            self._run, build, writer, hcfg, ctx, dockerfile.relative_to(ctx).as_posix(), on_line
        )
        return build.view

    async def wait(self, build_id: int) -> BuildView:
        build = self._get(build_id)
        await build.done.wait()
        return build.view

    async def cancel(self, build_id: int) -> BuildView:
        """Stop a running build (the daemon stops it) and wait for it to end."""
        build = self._get(build_id)
        if not build.view.active:
            raise EngineError(f"build {build_id} of {build.view.processing} is over")
        build.cancel.cancel()
        with anyio.move_on_after(CANCEL_WAIT_S):
            await build.done.wait()
        return build.view

    async def _run(
        self,
        build: _Build,
        writer: LogWriter,
        hcfg: HostConfig,
        ctx: Path,
        dockerfile: str,
        on_line: Callable[[str], None] | None,
    ) -> None:
        from picsellia_tui.engine.hosts import connect
        from picsellia_tui.engine.images import build_image

        def line(text: str, stream: str = "stdout") -> None:
            writer.append(
                [LogLine(time.time_ns(), "stderr" if stream == "stderr" else "stdout", text)]
            )
            if on_line is not None:
                on_line(text)

        def work() -> str:
            line(f"building {build.view.image} on {hcfg.name} ({hcfg.url})")
            client = connect(hcfg, timeout=1800)
            try:
                return build_image(
                    client, ctx, dockerfile, build.view.image, line, cancel=build.cancel
                )
            finally:
                client.close()

        update: dict[str, object] = {"status": "failed"}
        try:
            try:
                image_id = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
            except anyio.get_cancelled_exc_class():
                build.cancel.cancel()  # the engine stops: so does the build
                update = {"status": "cancelled", "error": "the engine stopped"}
                raise
            except BuildCancelled:
                update = {"status": "cancelled"}
                line("build cancelled", "stderr")
            except (EngineError, ExecutorError, OSError) as exc:
                reason = first_line(exc)
                update = {"status": "failed", "error": reason}
                line(f"build failed: {reason}", "stderr")
            except Exception as exc:
                log.exception("build %s of %s failed", build.view.id, build.view.processing)
                reason = f"{type(exc).__name__}: {first_line(exc)}"
                update = {"status": "failed", "error": reason}
                line(f"build failed: {reason}", "stderr")
            else:
                update = {"status": "succeeded", "image_id": image_id}
                line(f"built {build.view.image} ({image_id[:19]})")
        finally:
            writer.close()
            build.view = build.view.model_copy(update={**update, "ended_at": datetime.now(UTC)})
            build.done.set()
            self._rt.events.publish(
                BuildEnded(build.view.id, build.view.processing, build.view.status)
            )
