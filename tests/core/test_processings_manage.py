"""Private processings managed through the engine: create from the template,
update from the folder (changes shown first), remove (refused while a run is
active, in the same write transaction), and the refusals on public ones."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.errors import DefinitionError, InvalidInput, NotFound, RerunRefused
from picsellia_tui.engine.events import ProcessingsChanged
from tests.core.helpers import make_settings, model_file

pytestmark = pytest.mark.anyio
TEMPLATE = Path(__file__).resolve().parents[2] / "processings" / "_template"


async def test_create_from_the_template_then_update_shows_the_changes(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    shutil.copytree(TEMPLATE, s.processings_dir / "_template")
    async with Engine(s) as e:
        events = e.subscribe()
        p = await e.create_processing(template="my-proc", dest=tmp_path / "work")
        assert p.visibility == "private" and p.version == "0.1.0"
        assert p.source_dir == str((tmp_path / "work" / "my-proc").resolve())
        assert p.image == "picsellia-tui/my-proc:0.1.0"
        assert events.receive_nowait() == ProcessingsChanged("my-proc")
        # A taken name: refused before a folder is written, in one line.
        with pytest.raises(InvalidInput, match="'my-proc' is already a processing's name"):
            await e.create_processing(template="my-proc", dest=tmp_path / "other")
        assert not (tmp_path / "other").exists()
        with pytest.raises(InvalidInput, match="already a public processing's name"):
            await e.create_processing(template="test-copy", dest=tmp_path / "other")
        # create on an existing folder name: one way to change it, `update`.
        with pytest.raises(InvalidInput, match="processings update my-proc"):
            await e.create_processing(Path(p.source_dir or ""))

        plan = await e.plan_processing_update("my-proc")
        assert plan.changes == []
        toml = Path(p.source_dir or "") / "processing.toml"
        text = toml.read_text()
        text = text.replace('version = "0.1.0"', 'version = "0.2.0"')
        text = text.replace("my-proc:0.1.0", "my-proc:0.2.0")
        text = text.replace("frameworks = []", 'frameworks = ["onnx"]')
        text = text.replace('default = "processed"', 'default = "fixed"')
        text += '\n[[parameters]]\nname = "level"\ntype = "int"\ndefault = 2\nmin = 0\nmax = 9\n'
        toml.write_text(text)
        plan = await e.plan_processing_update("my-proc")
        changes = {c.what: (c.before, c.after) for c in plan.changes}
        assert changes == {
            "version": ("0.1.0", "0.2.0"),
            "image": ("picsellia-tui/my-proc:0.1.0", "picsellia-tui/my-proc:0.2.0"),
            "parameters.tag": (
                "str = processed · Tag given to the new version",
                "str = fixed · Tag given to the new version",
            ),
            "parameters.level": ("-", "int = 2 0..9"),
            "constraints.frameworks": ("-", "onnx"),
        }
        assert (await e.processing("my-proc")).version == "0.1.0"  # nothing saved yet
        # The file changes again after it was shown: what was shown is not saved.
        toml.write_text(text.replace('version = "0.2.0"', 'version = "0.3.0"'))
        with pytest.raises(InvalidInput, match="changed since its changes were shown"):
            await e.update_processing("my-proc", expect_hash=plan.definition_hash)
        toml.write_text(text)
        saved = await e.update_processing("my-proc", expect_hash=plan.definition_hash)
        assert saved.version == "0.2.0" and saved.constraints.frameworks == ["onnx"]
        assert [x.name for x in saved.parameters] == ["tag", "level"]
        assert (await e.plan_processing_update("my-proc")).changes == []
        # Sections and optional keys that were not there before.
        toml.write_text(text + "\n[picsellia]\napi = true\n")
        toml.write_text(
            toml.read_text().replace('command = ["python", "main.py"]', 'entrypoint = ["python"]')
        )
        changes = {
            c.what: (c.before, c.after) for c in (await e.plan_processing_update("my-proc")).changes
        }
        assert changes["picsellia.api"] == ("no", "yes")
        assert changes["entrypoint"] == ("-", "python")
        assert changes["command"] == ("python main.py", "-")
        toml.write_text(text)

        # A broken file: the error names the file and the key, like the command line.
        toml.write_text(text.replace('task = "MODEL_CONVERSION"', 'task = "NOPE"'))
        with pytest.raises(DefinitionError, match=r"processing.toml: task: "):
            await e.plan_processing_update("my-proc")
        toml.write_text(text.replace('name = "my-proc"', 'name = "renamed"'))
        with pytest.raises(DefinitionError, match="a processing keeps its name"):
            await e.plan_processing_update("my-proc")


async def test_public_processings_cannot_be_updated_or_removed(tmp_path: Path) -> None:
    async with Engine(make_settings(tmp_path)) as e:
        with pytest.raises(InvalidInput, match=r"test-copy is a public processing .*updated"):
            await e.plan_processing_update("test-copy")
        with pytest.raises(InvalidInput, match=r"test-copy is a public processing .*removed"):
            await e.remove_processing("test-copy")
        image = await e.create_processing(
            definition={
                "name": "from-image",
                "image": "example/x:1",
                "task": "MODEL_CONVERSION",
                "command": ["run"],
            }
        )
        with pytest.raises(InvalidInput, match="registered from an image: it has no folder"):
            await e.plan_processing_update(image.name)


async def test_remove_keeps_jobs_and_is_refused_while_a_run_is_active(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    shutil.copytree(s.processings_dir / "test-copy", tmp_path / "mine")
    toml = tmp_path / "mine" / "processing.toml"
    toml.write_text(
        toml.read_text()
        .replace('name = "test-copy"', 'name = "mine"')
        .replace('"picsellia-tui/test-copy:', '"example/mine:')  # its own image name
    )
    async with Engine(s, supervise=True) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        await e.create_processing(tmp_path / "mine")
        job = await e.launch("mine", "m/v1", {"lines": 2, "sleep": 30})
        run_id = (await e.job(job.id)).runs[-1].id
        await e.wait_run(run_id, lambda r: r.status == "running")
        with pytest.raises(InvalidInput, match=r"mine has an active run .*cancel it or let it end"):
            await e.remove_processing("mine")
        assert "mine" in [p.name for p in await e.processings()]
        await e.cancel(job.id)
        await e.wait_run(run_id)
        removed = await e.remove_processing("mine")
        assert removed.name == "mine"
        assert "mine" not in [p.name for p in await e.processings()]
        with pytest.raises(NotFound, match="'mine' was removed"):
            await e.launch("mine", "m/v1", {})
        # Its job and run history stay readable; it is not re-run any more.
        kept = await e.job(job.id)
        assert kept.processing == "mine" and kept.status == "killed"
        for same_image in (False, True):
            with pytest.raises(RerunRefused, match="processing mine was removed"):
                await e.rerun(job.id, same_image=same_image)
        assert [j.id for j in await e.jobs()] == [job.id]
        # The name can be used again by its owner (the old jobs keep their history).
        again = await e.create_processing(tmp_path / "mine")
        assert again.id == removed.id and "mine" in [p.name for p in await e.processings()]


async def test_remove_is_decided_in_the_write_transaction(tmp_path: Path) -> None:
    """A run made active by another process just before the removal is seen:
    the check is inside the IMMEDIATE transaction, not a read before it."""
    s = make_settings(tmp_path)
    shutil.copytree(s.processings_dir / "test-copy", tmp_path / "mine")
    toml = tmp_path / "mine" / "processing.toml"
    toml.write_text(
        toml.read_text()
        .replace('name = "test-copy"', 'name = "mine"')
        .replace('"picsellia-tui/test-copy:', '"example/mine:')  # its own image name
    )
    async with Engine(s) as e:  # no scheduler: the run stays pending
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        await e.create_processing(tmp_path / "mine")
        job = await e.launch("mine", "m/v1", {})
        with pytest.raises(InvalidInput, match="has an active run"):
            await e.remove_processing("mine")
        # The run ends behind the engine's back (another process): removal now passes.
        con = sqlite3.connect(e.ws.db.path)
        con.execute("UPDATE run SET status = 'failed' WHERE job_id = ?", (job.id,))
        con.commit()
        con.close()
        await e.remove_processing("mine")


def test_command_line_update_and_remove(tmp_path: Path) -> None:
    """`processings update` prints the changes before saving them (--dry-run saves
    nothing); `processings remove` says what stays; refusals are one line, exit 2."""
    import json
    import os
    import subprocess
    import sys

    s = make_settings(tmp_path)
    shutil.copytree(TEMPLATE, s.processings_dir / "_template")
    exe = Path(sys.executable).parent / "picsellia-tui"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICSELLIA_TUI_")}
    env.update(
        PICSELLIA_TUI_DATA_DIR=str(s.data_dir),
        PICSELLIA_TUI_EXECUTOR="process",
        PICSELLIA_TUI_PROCESSINGS_DIR=str(s.processings_dir),
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(exe), *args], capture_output=True, text=True, env=env, timeout=120
        )

    p = cli("processings", "create", "--from-template", "my-proc", "--dest", str(tmp_path))
    assert p.returncode == 0, p.stderr
    again = cli("processings", "create", str(tmp_path / "my-proc"))
    assert again.returncode == 2
    assert again.stderr == (
        "error: a processing named 'my-proc' already exists; update it from its folder: "
        "picsellia-tui processings update my-proc\n"
    )
    p = cli("processings", "update", "my-proc")
    assert p.returncode == 0 and "nothing to update" in p.stdout
    toml = tmp_path / "my-proc" / "processing.toml"
    toml.write_text(toml.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    p = cli("processings", "update", "my-proc", "--dry-run")
    assert p.returncode == 0, p.stderr
    assert "version" in p.stdout and "0.1.0" in p.stdout and "0.2.0" in p.stdout
    assert "1 change not saved (--dry-run)" in p.stdout
    shown = json.loads(cli("processings", "show", "my-proc", "--json").stdout)
    assert shown["version"] == "0.1.0"
    p = cli("processings", "update", "my-proc", "--json")
    data = json.loads(p.stdout)
    assert data["saved"] and data["changes"] == [
        {"what": "version", "before": "0.1.0", "after": "0.2.0"}
    ]
    assert json.loads(cli("processings", "show", "my-proc", "--json").stdout)["version"] == "0.2.0"

    p = cli("processings", "remove", "test-copy")
    assert p.returncode == 2 and p.stderr == (
        "error: test-copy is a public processing (bundled with the app, read-only): "
        "it cannot be removed\n"
    )
    p = cli("processings", "remove", "my-proc")
    assert p.returncode == 0 and "my-proc removed; its jobs stay in the history" in p.stdout
    names = [x["name"] for x in json.loads(cli("processings", "list", "--json").stdout)]
    assert "my-proc" not in names and "test-copy" in names
