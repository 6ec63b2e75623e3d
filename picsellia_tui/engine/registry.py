"""Registry services: import a ModelVersion's files, create a private processing,
build a processing's image, and see which images a host has."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from sqlmodel import Session

from picsellia_tui.engine import catalog, queries
from picsellia_tui.engine.errors import EngineError
from picsellia_tui.engine.events import VersionCreated
from picsellia_tui.engine.executors.base import ExecutorError
from picsellia_tui.engine.reads import Reads
from picsellia_tui.engine.runtime import Runtime
from picsellia_tui.engine.views import ProcessingView, VersionView


class Registry:
    def __init__(self, rt: Runtime, reads: Reads) -> None:
        self.rt = rt
        self.reads = reads

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
        stored = await self.rt.db(lambda: catalog.store_files(self.rt.ws, files))

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
        self, folder: Path | None = None, *, definition: dict[str, Any] | None = None
    ) -> ProcessingView:
        """A private processing from a folder (processing.toml + Dockerfile), or from
        a definition naming an existing image (no folder: nothing to build)."""

        def go() -> ProcessingView:
            defn = None
            if definition is not None:
                from picsellia_tui.engine.definitions import validate_definition

                defn = validate_definition(definition, "processing from an image")
            row = catalog.create_private(self.rt.ws, folder=folder, defn=defn)
            with self.rt.ws.db.read() as s:
                return queries.processing_view(row, queries.Names(s))

        return await self.rt.db(go)

    async def build_processing(
        self, name: str, *, host: str | None = None, on_line: Callable[[str], None] | None = None
    ) -> tuple[str, str]:
        """Build a processing's image from its folder on a Docker host (the context
        goes over the API, so any host works). Returns (image, image id)."""
        from picsellia_tui.engine.definitions import load_definition
        from picsellia_tui.engine.hosts import connect
        from picsellia_tui.engine.images import build_image

        proc = await self.reads.processing(name)
        if not proc.source_dir:
            raise EngineError(f"{name} was created from an image: there is no folder to build")
        folder = Path(proc.source_dir)
        defn = load_definition(folder)
        ctx, dockerfile = catalog.build_paths(folder, defn, private=proc.visibility == "private")
        hcfg = self.rt.settings.host(host)

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
