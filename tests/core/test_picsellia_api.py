"""The local Picsellia API, with the real picsellia SDK (6.37) as its client.

A real workspace and engine (not supervising: the run stays pending, its grant is
made by hand), the API served on loopback, the SDK called in a worker thread.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
import requests

from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.executors.base import LogLine
from picsellia_tui.engine.picsellia_api.server import ApiService
from picsellia_tui.storage.models import ModelVersion, Run, RunEvent, VersionFile
from tests.core.helpers import make_settings
from tests.picsellia_sdk import (
    MODEL_BYTES,
    add_sdk_processing,
    import_sdk_keeping_loggers,
    run_sdk_suite,
)

picsellia = import_sdk_keeping_loggers()
from picsellia import Client  # noqa: E402
from picsellia.exceptions import ForbiddenError, PicselliaError, ResourceNotFoundError  # noqa: E402
from picsellia.types.enums import JobRunStatus  # noqa: E402

pytestmark = pytest.mark.anyio
T = TypeVar("T")


@dataclass
class Hooks:
    lines: list[LogLine] = field(default_factory=list)
    reports: list[tuple[int, str]] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)

    async def log_lines(self, run_id: int, lines: list[LogLine]) -> None:
        self.lines += lines

    async def reported(self, run_id: int, status: str) -> None:
        self.reports.append((run_id, status))

    async def version_changed(self, version_id: int) -> None:
        self.changed.append(version_id)


@dataclass
class Api:
    engine: Engine
    service: ApiService
    hooks: Hooks
    host: str
    token: str
    run_id: int
    job_uuid: str
    target_uuid: str
    other_token: str
    other_target_uuid: str
    tmp: Path

    async def sdk(self, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn)

    def client(self, token: str | None = None, **kw: Any) -> Client:
        if not kw:
            kw = {"organization_name": "default"}
        return Client(api_token=token or self.token, host=self.host, **kw)


async def _launch(e: Engine, tmp: Path, model: str) -> tuple[int, int, int, int, str]:
    src = tmp / model
    src.mkdir()
    (src / "model.onnx").write_bytes(MODEL_BYTES)
    (src / "labels.txt").write_bytes(b"a\nb\n")
    v = await e.import_version(
        model, "v1", [src / "model.onnx", src / "labels.txt"], framework="onnx", labels=["a", "b"]
    )
    job = await e.launch("test-copy", f"{model}/v1", {"lines": "1"})
    run_id = job.runs[0].id

    def q() -> tuple[int, str]:
        with e.ws.db.read() as s:
            run = s.get(Run, run_id)
            mv = s.get(ModelVersion, v.id)
            assert run is not None and mv is not None
            return mv.model_id, run.created_at.isoformat()

    model_id, created = await anyio.to_thread.run_sync(q)
    return run_id, job.id, v.id, model_id, created


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    s = make_settings(tmp_path)
    hooks = Hooks()
    async with Engine(s, supervise=False) as e, anyio.create_task_group() as tg:
        run_id, job_id, vid, mid, created = await _launch(e, tmp_path, "m")
        run2, job2, vid2, mid2, created2 = await _launch(e, tmp_path, "other")
        service = ApiService(
            e.ws, s.organization, hooks, key=b"k" * 32, quota_bytes=40 * 1024 * 1024
        )
        endpoint = await service.start(tg)
        token = service.grant(
            run_id=run_id, job_id=job_id, target_version_id=vid, model_id=mid, created_at=created
        )
        other = service.grant(
            run_id=run2, job_id=job2, target_version_id=vid2, model_id=mid2, created_at=created2
        )
        yield Api(
            e,
            service,
            hooks,
            endpoint.tcp_url,
            token,
            run_id,
            service.ids.encode("job", job_id),
            service.ids.encode("version", vid),
            other,
            service.ids.encode("version", vid2),
            tmp_path,
        )
        await service.stop(keep_dir=False)
        tg.cancel_scope.cancel()


async def test_client_starts_by_name_and_by_id(api: Api) -> None:
    c = await api.sdk(api.client)
    assert c.name == "default"
    c2 = await api.sdk(lambda: api.client(organization_id=str(c.id)))
    assert str(c2.id) == str(c.id) and c2.connection.connector_id is not None
    c3 = await api.sdk(lambda: Client(api_token=api.token, host=api.host))
    assert str(c3.id) == str(c.id)  # the default organization, from ping


async def test_unknown_token_is_403_one_json_line(api: Api) -> None:
    r = await api.sdk(
        lambda: requests.get(
            f"{api.host}/api/home/ping", headers={"Authorization": "Bearer nope"}, timeout=5
        )
    )
    assert r.status_code == 403
    assert r.text.count("\n") == 0 and "message" in r.json()
    with pytest.raises(PicselliaError):
        await api.sdk(lambda: api.client("not-a-token"))
    r = await api.sdk(
        lambda: requests.get(
            f"{api.host}/api/nothing/here",
            headers={"Authorization": f"Bearer {api.token}"},
            timeout=5,
        )
    )
    assert r.status_code == 404 and "not served" in r.json()["message"]


async def test_job_sync_both_payload_shapes_and_status(api: Api) -> None:
    def go() -> dict[str, Any]:
        c = api.client()
        job = c.get_job_by_id(api.job_uuid)
        info = job.sync()
        job.update_job_run_with_status(JobRunStatus.RUNNING)
        assert job.status == JobRunStatus.RUNNING
        return info

    info = await api.sdk(go)
    assert info["processing_job"]["target_id"] == api.target_uuid
    assert info["processing_job"]["parameters"]["lines"] == 1
    assert info["model_version_processing_job"]["input_model_version_id"] == api.target_uuid
    assert info["model_version_processing_job"]["parameters"]["lines"] == 1
    assert api.hooks.reports == [(api.run_id, "RUNNING")]

    def events() -> list[str]:
        with api.engine.ws.db.read() as s:
            from sqlmodel import select

            rows = s.exec(select(RunEvent).where(RunEvent.run_id == api.run_id))
            return [r.reason or "" for r in rows]

    assert any("reported RUNNING" in r for r in await anyio.to_thread.run_sync(events))


async def test_files_list_get_download(api: Api) -> None:
    dest = api.tmp / "dl"

    def go() -> list[str]:
        c = api.client()
        mv = c.get_model_version_by_id(api.target_uuid)
        assert mv.name == "v1" and mv.origin_name == "m"
        names = [f.name for f in mv.list_files()]
        f = mv.get_file("model.onnx")
        f.download(dest)
        with pytest.raises(ResourceNotFoundError):
            mv.get_file("nope")
        return names

    names = await api.sdk(go)
    assert sorted(names) == ["labels.txt", "model.onnx"]
    got = (dest / "model.onnx").read_bytes()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(MODEL_BYTES).hexdigest()


async def test_create_version_and_store_small_and_multipart(api: Api) -> None:
    small = api.tmp / "small.onnx"
    small.write_bytes(b"small output")
    big = api.tmp / "big.bin"
    with big.open("wb") as f:  # > 25 MiB: the SDK switches to a multipart upload
        for i in range(27):
            f.write(bytes([i]) * (1024 * 1024))

    def go() -> tuple[str, str]:
        c = api.client()
        mv = c.get_model_version_by_id(api.target_uuid)
        model = c.get_model_by_id(mv.origin_id)
        new = model.create_version(name="v1-api", framework="ONNX")
        new.store("model-latest", small)
        new.store("weights", big)
        # Stored on the target version: updates it.
        mv.store("extra", small)
        return str(new.id), new.name

    new_uuid, name = await api.sdk(go)
    assert name == "v1-api"
    new_id = api.service.ids.decode("version", new_uuid)

    def rows() -> tuple[ModelVersion, list[VersionFile], list[VersionFile]]:
        from sqlmodel import select

        with api.engine.ws.db.read() as s:
            v = s.get(ModelVersion, new_id)
            files = list(s.exec(select(VersionFile).where(VersionFile.version_id == new_id)))
            target = list(s.exec(select(VersionFile).where(VersionFile.version_id != new_id)))
            assert v is not None
            return v, files, target

    v, files, others = await anyio.to_thread.run_sync(rows)
    job_id = api.service.ids.decode("job", api.job_uuid)
    assert v.origin_job_id == job_id and v.parent_id == api.service.ids.decode(
        "version", api.target_uuid
    )
    by_name = {(f.name or f.path): f for f in files}
    assert by_name["model-latest"].path == "small.onnx"
    assert by_name["model-latest"].sha256 == hashlib.sha256(b"small output").hexdigest()
    assert by_name["weights"].size == 27 * 1024 * 1024
    assert by_name["weights"].sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    assert any(f.name == "extra" for f in others)
    assert new_id in api.hooks.changed


async def test_logging_lines_sections_progress(api: Api) -> None:
    def go() -> None:
        c = api.client()
        job = c.get_job_by_id(api.job_uuid)
        job.send_logging("--#--Preparing", "part")
        for i in range(1000):
            job.send_logging(f"line {i}", "part")
        for pct in range(0, 101, 10):
            job.send_logging(f"\r{pct}%|####|", "part", special="progress")
        job.send_logging("after the bar", "part", final=True)

    await api.sdk(go)
    texts = [line.text.replace("\x1b[2m[api]\x1b[22m ", "") for line in api.hooks.lines]
    assert texts[0] == "\x1b[1m── Preparing ──\x1b[22m"
    assert texts[1:1001] == [f"line {i}" for i in range(1000)]
    assert texts[1001:] == ["100%|####|", "after the bar"]  # the bar: its last state only


async def test_token_scope_and_end_of_run(api: Api) -> None:
    # The other run's token cannot read this run's version or job.
    def cross() -> None:
        c = api.client(api.other_token)
        with pytest.raises(ForbiddenError):
            c.get_model_version_by_id(api.target_uuid)
        with pytest.raises(ForbiddenError):
            c.get_job_by_id(api.job_uuid)

    await api.sdk(cross)

    def url() -> str:
        c = api.client()
        f = c.get_model_version_by_id(api.target_uuid).get_file("model.onnx")
        return f.url

    presigned = await api.sdk(url)

    def get(url: str, **kw: Any) -> requests.Response:
        return requests.get(url, timeout=5, **kw)

    assert (await api.sdk(lambda: get(presigned))).content == MODEL_BYTES
    tampered = presigned.replace("model.onnx", "labels.txt")
    assert (await api.sdk(lambda: get(tampered))).status_code == 403
    api.service.revoke(api.run_id)
    auth = {"Authorization": f"Bearer {api.token}"}
    assert (
        await api.sdk(lambda: get(f"{api.host}/api/home/ping", headers=auth))
    ).status_code == 403
    assert (await api.sdk(lambda: get(presigned))).status_code == 403


def test_token_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    logging.getLogger().setLevel(logging.DEBUG)
    assert "Bearer" not in caplog.text


# ------------------------------------------------- end to end: the process executor


async def test_sdk_processing_end_to_end_on_process_executor(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    add_sdk_processing(s.processings_dir)
    async with Engine(s, supervise=True) as e:
        await run_sdk_suite(e, tmp_path)


async def test_uploads_are_bounded_by_the_outputs_quota(api: Api) -> None:
    big = api.tmp / "big.bin"
    big.write_bytes(b"\x01" * (26 * 1024 * 1024))

    def go() -> None:
        c = api.client()
        mv = c.get_model_version_by_id(api.target_uuid)
        new = c.get_model_by_id(mv.origin_id).create_version(name="v1-quota")
        new.store("first", big)  # 26 MiB of the test's 40 MiB quota
        with pytest.raises(Exception, match=r"413|at most"):
            new.store("second", big)

    await api.sdk(go)


async def test_process_run_goes_on_through_an_engine_restart(tmp_path: Path) -> None:
    """The engine leaves while a process run posts to the API; the next engine
    serves the same token on the same loopback port and the run ends well."""
    from picsellia_tui.storage.logfile.reader import LogReader
    from tests.picsellia_sdk import MARK

    s = make_settings(tmp_path)
    add_sdk_processing(s.processings_dir)
    src = tmp_path / "model.onnx"
    src.write_bytes(MODEL_BYTES)
    async with Engine(s, supervise=True) as e:
        await e.import_version("m", "v1", [src], framework="onnx")
        job = await e.launch("test-sdk", "m/v1", {"lines": "3000"})
        run = await e.wait_run(job.runs[0].id, lambda r: r.status == "running")
        with anyio.fail_after(60):
            while sum(r.stream == "api" for r in LogReader(Path(run.log_path)).records(0)) < 50:
                await anyio.sleep(0.05)
    async with Engine(s, supervise=True) as e2:
        with anyio.fail_after(120):
            run = await e2.wait_run(job.runs[0].id)
        records = LogReader(Path(run.log_path)).records(0, 10_000)
        assert run.status == "succeeded", [r.text for r in records][-12:]
        lines = [r.text.removeprefix(MARK) for r in records if r.stream == "api"]
        numbered = [int(t.split()[-1]) for t in lines if t.startswith("api line ")]
        assert numbered == list(range(3000))
