"""The Processings tab's engine calls through the workspace's shared engine (the
app as a client over its socket): create, update (with the changes shown first),
remove, the engine's refusals with their field, and the events that refresh
other apps. (A build over the socket is driven by tests/e2e/test_tmux_fix_and_rerun.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from picsellia_tui.engine.errors import DefinitionError, InvalidInput
from picsellia_tui.engine.remote import RemoteHandle
from picsellia_tui.tui.widgets.processings import ProcessingsPane
from tests.tui.helpers import until
from tests.tui.test_shared_engine import Shared, two_apps
from tests.tui.test_shared_engine import shared as shared  # the fixture

pytestmark = pytest.mark.anyio
TEMPLATE = Path(__file__).resolve().parents[2] / "processings" / "_template"


async def test_processings_managed_through_the_shared_engine(
    shared: Shared, tmp_path: Path
) -> None:
    shutil.copytree(TEMPLATE, shared.root / "procs" / "_template")
    async with two_apps() as (first, _, second, p2):
        assert isinstance(first.handle, RemoteHandle)

        async def run(fn: object) -> object:
            return await first.engine_await(fn)  # type: ignore[arg-type]

        work = tmp_path / "work"
        work.mkdir()
        p = await run(lambda e: e.create_processing(template="my-proc", dest=work))
        assert p.source_dir == str(work / "my-proc")  # type: ignore[attr-defined]
        # The other app's list follows (ProcessingsChanged over the socket).
        pane = second.screen_stack[0].query_one(ProcessingsPane)
        await until(p2, lambda: "my-proc" in [x.name for x in pane.processings])

        with pytest.raises(InvalidInput) as refused:
            await run(lambda e: e.create_processing(template="my-proc", dest=work))
        assert refused.value.field == "name"

        toml = work / "my-proc" / "processing.toml"
        text = toml.read_text()
        toml.write_text(text.replace('task = "MODEL_CONVERSION"', 'task = "NOPE"'))
        with pytest.raises(DefinitionError) as broken:
            await run(lambda e: e.plan_processing_update("my-proc"))
        assert broken.value.key == "task" and broken.value.file == str(toml)
        toml.write_text(text.replace('version = "0.1.0"', 'version = "0.2.0"'))
        plan = await run(lambda e: e.plan_processing_update("my-proc"))
        assert [c.what for c in plan.changes] == ["version"]  # type: ignore[attr-defined]
        saved = await run(
            lambda e: e.update_processing("my-proc", expect_hash=plan.definition_hash)  # type: ignore[attr-defined]
        )
        assert saved.version == "0.2.0"  # type: ignore[attr-defined]
        await run(lambda e: e.remove_processing("my-proc"))
        await until(p2, lambda: "my-proc" not in [x.name for x in pane.processings])
