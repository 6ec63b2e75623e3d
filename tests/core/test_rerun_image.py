"""Re-run takes the processing's current definition and image; each run records the
digest it ran; `same_image` pins the previous run's. Runs go through the process
executor dressed as a Docker host whose tag -> digest map the test changes (a
rebuild), so no Docker is needed here (tests/docker does it for real)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.errors import InvalidInput, RerunRefused
from picsellia_tui.engine.executors.base import Executor
from picsellia_tui.engine.executors.process import ProcessExecutor
from picsellia_tui.storage.models import Job
from tests.core.helpers import FIXTURES, make_settings, model_file

pytestmark = pytest.mark.anyio

TAG = "picsellia-tui/test-copy:1.0.0"
OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64


class RebuiltHost(ProcessExecutor):
    """Runs code like the process executor, resolves images like a Docker host."""

    kind = "docker"

    def __init__(self, runs_root: Path, images: dict[str, str]) -> None:
        super().__init__(runs_root)
        self.images = images
        self.asked: list[str] = []

    async def resolve_image(self, image: str, *, processing: str | None = None) -> str:
        self.asked.append(image)
        return self.images.get(image, image)


def _engine(tmp: Path, images: dict[str, str]) -> tuple[Engine, list[RebuiltHost]]:
    made: list[RebuiltHost] = []

    def factory(kind: str, host: str) -> Executor:
        made.append(RebuiltHost(tmp / "runs", images))
        return made[-1]

    return Engine(make_settings(tmp), supervise=True, executor_factory=factory), made


async def test_rerun_runs_the_current_image_and_same_image_pins_the_previous(
    tmp_path: Path,
) -> None:
    images = {TAG: OLD}
    engine, hosts = _engine(tmp_path, images)
    async with engine as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("test-copy", "m/v1", {"lines": "1"})
        r1 = await e.wait_run(job.runs[0].id)
        assert r1.status == "succeeded" and r1.image_digest == OLD and r1.image_ref == TAG

        images[TAG] = NEW  # the user rebuilt the image under the same tag
        pinned = await e.wait_run((await e.rerun(job.id, same_image=True)).id)
        assert pinned.image_ref == OLD and pinned.image_digest == OLD
        r3 = await e.wait_run((await e.rerun(job.id)).id)
        assert r3.status == "succeeded" and r3.image_ref == TAG and r3.image_digest == NEW
        assert r3.image_changed is True and r3.short_digest == "b" * 12

        j = await e.job(job.id)
        assert [r.image_digest for r in j.runs] == [OLD, OLD, NEW]
        assert [r.image_changed for r in j.runs] == [False, False, True]
        assert not hasattr(j, "image_digest")  # the job keeps no single digest
        assert hosts[0].asked == [TAG, OLD, TAG]


async def test_same_image_needs_a_recorded_digest(tmp_path: Path) -> None:
    async with Engine(make_settings(tmp_path), supervise=True) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("test-copy", "m/v1", {"lines": "1"})
        await e.wait_run(job.runs[0].id)
        # The process executor runs no image: nothing to pin.
        with pytest.raises(RerunRefused, match="no earlier run that recorded an image digest"):
            await e.rerun(job.id, same_image=True)


NEW_PARAM = '\n[[parameters]]\nname = "note"\ntype = "str"\ndefault = "hello"\n'


def _private_copy(tmp: Path) -> Path:
    folder = tmp / "mine" / "my-copy"
    shutil.copytree(FIXTURES / "proc_copy", folder)
    toml = folder / "processing.toml"
    # A private processing has an image name of its own (the public one's is refused).
    toml.write_text(
        toml.read_text()
        .replace('name = "test-copy"', 'name = "my-copy"')
        .replace('"picsellia-tui/test-copy:', '"example/my-copy:')
    )
    return folder


def _edit(folder: Path, old: str, new: str) -> None:
    toml = folder / "processing.toml"
    text = toml.read_text()
    assert old in text
    toml.write_text(text.replace(old, new))


async def test_rerun_takes_the_updated_definition(tmp_path: Path) -> None:
    folder = _private_copy(tmp_path)
    async with Engine(make_settings(tmp_path), supervise=True) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        await e.create_processing(folder)
        job = await e.launch("my-copy", "m/v1", {"lines": "2"})
        assert (await e.wait_run(job.runs[0].id)).status == "succeeded"

        # The code and its spec change: a new version and a new parameter.
        _edit(folder, 'version = "1.0.0"', 'version = "1.1.0"')
        toml = folder / "processing.toml"
        toml.write_text(toml.read_text() + NEW_PARAM)
        await e.update_processing("my-copy")
        run = await e.wait_run((await e.rerun(job.id)).id)
        assert run.status == "succeeded", run.error_summary
        j = await e.job(job.id)
        assert j.parameters["lines"] == 2 and j.parameters["note"] == "hello"
        with e.ws.db.read() as s:
            row = s.get(Job, job.id)
            assert row is not None and row.processing_snapshot["version"] == "1.1.0"


REQUIRED = '\n[[parameters]]\nname = "threshold"\ntype = "float"\nrequired = true\n'


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        # 'lines' was 50: the new maximum refuses it
        (("max = 1000000", "max = 10"), "parameter 'lines': 50 is above the maximum 10"),
        # a parameter the job never had is now required
        (None, "parameter 'threshold': is required"),
    ],
)
async def test_rerun_refuses_parameters_the_new_spec_rejects(
    tmp_path: Path, edit: tuple[str, str] | None, named: str
) -> None:
    folder = _private_copy(tmp_path)
    async with Engine(make_settings(tmp_path), supervise=True) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        await e.create_processing(folder)
        job = await e.launch("my-copy", "m/v1", {"lines": "50"})
        await e.wait_run(job.runs[0].id)
        if edit is None:
            toml = folder / "processing.toml"
            toml.write_text(toml.read_text() + REQUIRED)
        else:
            _edit(folder, *edit)
        await e.update_processing("my-copy")
        with pytest.raises(RerunRefused) as info:
            await e.rerun(job.id)
        message = str(info.value)
        assert named in message and "R in the Jobs tab" in message, message
        assert "\n" not in message
        assert (await e.job(job.id)).attempts == 1  # nothing was added


async def test_process_executor_needs_a_command(tmp_path: Path) -> None:
    folder = _private_copy(tmp_path)
    _edit(folder, 'command = ["python", "main.py"]\n', "")
    async with Engine(make_settings(tmp_path), supervise=True) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        p = await e.create_processing(folder)  # valid: Docker would run the image's CMD
        assert p.command == []
        with pytest.raises(InvalidInput, match="has no command: the process executor") as info:
            await e.launch("my-copy", "m/v1")
        assert "\n" not in str(info.value)
