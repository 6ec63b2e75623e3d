"""Registry services: import a ModelVersion's files; create, update and remove a
private processing; build a processing's image (builds.Builds); see which images
a host has."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup
from sqlmodel import Session

from picsellia_tui.engine import catalog, queries
from picsellia_tui.engine.builds import Builds
from picsellia_tui.engine.errors import InvalidInput
from picsellia_tui.engine.events import ProcessingsChanged, VersionCreated
from picsellia_tui.engine.executors.base import ExecutorError
from picsellia_tui.engine.reads import Reads
from picsellia_tui.engine.runtime import Runtime
from picsellia_tui.engine.views import BuildView, ProcessingUpdate, ProcessingView, VersionView


class Registry:
    def __init__(self, rt: Runtime, reads: Reads) -> None:
        self.rt = rt
        self.reads = reads
        self.builds = Builds(rt)

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
        quota = self.rt.settings.import_quota_bytes
        files = catalog.collect_files(paths, quota)
        catalog.check_version_name(version)
        stored = await self.rt.db(lambda: catalog.store_files(self.rt.ws, files, quota))

        def w(s: Session) -> VersionView:
            v = catalog.add_version(
                s,
                self.rt.ws,
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

        view = await self.rt.db(self.rt.write(w))
        self.rt.events.publish(VersionCreated(view.id, view.model, view.name))
        return view

    async def create_processing(
        self,
        folder: Path | None = None,
        *,
        definition: dict[str, Any] | None = None,
        template: str | None = None,
        dest: Path | None = None,
        template_kind: str = "default",
    ) -> ProcessingView:
        """A private processing from a folder (processing.toml + Dockerfile), from a
        template (a new folder `dest/template`; `template_kind` picks which), or
        from a definition naming an existing image (no folder: nothing to build)."""
        ws = self.rt.ws

        def go() -> ProcessingView:
            defn = None
            target = folder
            if definition is not None:
                from picsellia_tui.engine.definitions import validate_definition

                defn = validate_definition(definition, "processing from an image")
            elif template is not None:
                if template_kind not in catalog.TEMPLATES:
                    kinds = ", ".join(k for k in catalog.TEMPLATES if k != "default")
                    raise InvalidInput(
                        f"unknown template {template_kind!r} (templates: {kinds}; "
                        "or --from-template NAME)",
                        "template",
                    )
                catalog.check_name_free(ws, template)
                target = catalog.scaffold(
                    ws, template, dest or Path("."), catalog.TEMPLATES[template_kind]
                )
            elif folder is None:
                raise InvalidInput("give a folder, a template name or an image", "folder")
            row = catalog.create_private(ws, folder=target, defn=defn)
            with ws.db.read() as s:
                return queries.processing_view(row, queries.Names(s))

        view = await self.rt.db(go)
        self.rt.events.publish(ProcessingsChanged(view.name))
        return view

    async def plan_update(self, name: str) -> ProcessingUpdate:
        """What `update_processing` would change (read from the folder, nothing saved)."""
        return await self.rt.db(lambda: catalog.plan_update(self.rt.ws, name))

    async def update_processing(
        self, name: str, *, expect_hash: str | None = None
    ) -> ProcessingView:
        """Save a private processing's processing.toml again (refused when it changed
        since `plan_update` showed it, given its `definition_hash`)."""
        ws = self.rt.ws

        def go() -> ProcessingView:
            row = catalog.update_private(ws, name, expect_hash)
            with ws.db.read() as s:
                return queries.processing_view(row, queries.Names(s))

        view = await self.rt.db(go)
        self.rt.events.publish(ProcessingsChanged(view.name))
        return view

    async def remove_processing(self, name: str) -> ProcessingView:
        """Remove a private processing: out of the list, not launchable; its jobs
        and their history stay. Refused while one of its runs is active (checked in
        the same write transaction)."""
        ws = self.rt.ws

        def go() -> ProcessingView:
            row = catalog.remove_private(ws, name)
            with ws.db.read() as s:
                return queries.processing_view(row, queries.Names(s))

        view = await self.rt.db(go)
        self.rt.events.publish(ProcessingsChanged(view.name))
        return view

    # -- image builds (builds.Builds) ---------------------------------------------------

    async def start_build(
        self,
        tg: TaskGroup,
        name: str,
        *,
        host: str | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> BuildView:
        """Start building a processing's image from its folder on a Docker host (the
        context goes over the API, so any host works); its log goes to a file."""
        proc = await self.reads.processing(name)
        return await self.builds.start(tg, proc, host, on_line)

    async def build_processing(
        self,
        tg: TaskGroup,
        name: str,
        *,
        host: str | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> tuple[str, str]:
        """Build and wait (cancelled with the caller). Returns (image, image id);
        raises ExecutorError with the reason when the build fails."""
        view = await self.start_build(tg, name, host=host, on_line=on_line)
        try:
            view = await self.builds.wait(view.id)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self.builds.cancel(view.id)
            raise
        if view.status != "succeeded" or view.image_id is None:
            raise ExecutorError(view.error or f"build of {view.image} {view.status}")
        return view.image, view.image_id

    async def swarm_node_count(self, host: str) -> int | None:
        """How many nodes a swarm host's manager lists (None: not a swarm host, not
        the Docker executor, or the manager does not answer)."""
        if self.rt.settings.executor != "docker":
            return None
        hcfg = self.rt.settings.host(host)
        if hcfg.kind != "swarm":
            return None

        def go() -> int | None:
            from picsellia_tui.engine.hosts import connect

            try:
                client = connect(hcfg, timeout=hcfg.connect_timeout)
            except ExecutorError:
                return None
            try:
                return len(client.api.nodes())
            except Exception:  # not a manager, refused, gone: the kind alone is shown
                return None
            finally:
                client.close()

        return await anyio.to_thread.run_sync(go)

    async def image_presence(self, host: str | None = None) -> dict[str, bool]:
        """Which processings' images exist on the host ({} when Docker is not used
        or the host does not answer)."""
        if self.rt.settings.executor != "docker":
            return {}
        from picsellia_tui.engine.images import image_present

        procs = await self.reads.processings()
        hcfg = self.rt.settings.host(host)

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
