"""The light read path (storage/lightread.py) answers what the engine answers."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.errors import EngineError
from picsellia_tui.engine.lightconfig import light_settings
from picsellia_tui.storage.db import SCHEMA_HEAD
from picsellia_tui.storage.lightread import SCHEMA, LightError, LightReader, Unsupported
from tests.core.helpers import FIXTURES, make_settings, model_file

pytestmark = pytest.mark.anyio


def dump(view: Any) -> Any:
    if isinstance(view, list):
        return [dump(v) for v in view]
    return view.model_dump(mode="json")


def test_the_light_queries_are_written_for_the_current_schema() -> None:
    # A migration changes the schema: update storage/lightread.py with it (the
    # comparisons below then show what differs).
    assert SCHEMA == SCHEMA_HEAD


async def test_light_answers_equal_the_engines(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with Engine(settings, supervise=True) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx", tags=["a"])
        first = await e.launch("test-copy", "m/v1", {"lines": 2, "token": "hunter22"})
        await e.wait_run(first.runs[-1].id)
        await e.wait_run((await e.rerun(first.id)).id)
        failed = await e.launch("test-copy", "m/v1", {"fail": True}, output_version_name="x")
        await e.wait_run(failed.runs[-1].id)
        out = await e.launch("test-copy", "m/v1", {"lines": 1})
        await e.wait_run(out.runs[-1].id)
        produced = (await e.job(out.id)).runs[-1].output_version_id
        assert produced is not None
        # A removed private processing leaves the list; naming it says when it went.
        await e.create_processing(
            definition={"name": "gone", "image": "example/gone:1", "task": "MODEL_CONVERSION"}
        )
        await e.remove_processing("gone")
        running = await e.launch("test-copy", "m/v1", {"sleep": 30})
        await e.wait_run(running.runs[-1].id, lambda r: r.status == "running")

        engine_side = {
            "processings": dump(await e.processings()),
            "processing": dump(await e.processing("test-copy")),
            "processing by id": dump(await e.processing("1")),
            "versions": dump(await e.versions()),
            "version": dump(await e.version("m/v1")),
            "version by id": dump(await e.version(str(produced))),
            "jobs": dump(await e.jobs(limit=50)),
            "jobs page 2": dump(await e.jobs(limit=2, offset=2)),
            "failed jobs": dump(await e.jobs(limit=50, status="failed")),
            "count": await e.count_jobs(),
            "count failed": await e.count_jobs("failed"),
            "job": dump(await e.job(first.id)),
            "failed job": dump(await e.job(failed.id)),
        }
        with LightReader(settings.database_path) as r:
            r.check_catalog(settings.processings_dir)
            light_side = {
                "processings": r.processings(),
                "processing": r.processing("test-copy"),
                "processing by id": r.processing("1"),
                "versions": r.versions(),
                "version": r.version("m/v1"),
                "version by id": r.version(str(produced)),
                "jobs": r.jobs(limit=50),
                "jobs page 2": r.jobs(limit=2, offset=2),
                "failed jobs": r.jobs(limit=50, status="failed"),
                "count": r.count_jobs(),
                "count failed": r.count_jobs("failed"),
                "job": r.job(first.id),
                "failed job": r.job(failed.id),
            }
            light_running = r.job(running.id)
            light_errors = {}
            for lcall in (
                lambda: r.job(999),
                lambda: r.processing("nope"),
                lambda: r.processing("gone"),
                lambda: r.version("m/v9"),
                lambda: r.version("zz/v1"),
                lambda: r.version("42"),
                lambda: r.version("m"),
            ):
                with pytest.raises(LightError) as lexc:
                    lcall()
                light_errors[len(light_errors)] = str(lexc.value)

        running_job = dump(await e.job(running.id))
        errors = {}
        for call in (
            lambda: e.job(999),
            lambda: e.processing("nope"),
            lambda: e.processing("gone"),
            lambda: e.version("m/v9"),
            lambda: e.version("zz/v1"),
            lambda: e.version("42"),
            lambda: e.version("m"),
        ):
            with pytest.raises(EngineError) as exc:
                await call()
            errors[len(errors)] = str(exc.value)

        await e.cancel(running.id)

    for key, value in engine_side.items():
        # What --json prints, byte for byte.
        assert json.dumps(light_side[key], indent=2) == json.dumps(value, indent=2), key
    assert light_errors == errors
    assert "hunter22" not in json.dumps(light_side)
    assert len(engine_side["job"]["runs"]) == 2
    assert engine_side["count failed"] == 1

    # A running run's duration grows with the clock: the rest is the same.
    for job in (running_job, light_running):
        assert job["runs"][0]["status"] == "running"
        assert job["runs"][0].pop("duration_s") > 0
    assert light_running == running_job


def test_no_database_or_another_schema_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(Unsupported):
        LightReader(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()
    db = tmp_path / "other.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE alembic_version (version_num VARCHAR)")
    con.execute("INSERT INTO alembic_version VALUES ('0999')")
    con.commit()
    con.close()
    with pytest.raises(Unsupported, match="0999"):
        LightReader(db)


async def test_a_processing_edited_on_disk_sends_reads_through_the_engine(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with Engine(settings):
        pass
    with LightReader(settings.database_path) as r:
        r.check_catalog(settings.processings_dir)  # just synced

    toml = settings.processings_dir / "test-copy" / "processing.toml"
    toml.write_text(toml.read_text().replace('version = "1.0.0"', 'version = "1.0.1"'))
    future = time.time() + 5  # mtime granularity must not hide the edit
    os.utime(toml, (future, future))
    with LightReader(settings.database_path) as r, pytest.raises(Unsupported):
        r.check_catalog(settings.processings_dir)
    os.utime(toml, (future - 60, future - 60))
    async with Engine(settings):
        pass

    shutil.copytree(FIXTURES / "proc_copy", settings.processings_dir / "another")
    async with Engine(settings):
        pass
    # 'another' defines test-copy too: one of the two folders is not synced.
    with LightReader(settings.database_path) as r, pytest.raises(Unsupported):
        r.check_catalog(settings.processings_dir)
    shutil.rmtree(settings.processings_dir / "another")
    with LightReader(settings.database_path) as r:
        r.check_catalog(settings.processings_dir)
        assert r.processing("test-copy")["version"] == "1.0.1"


def test_light_settings_agree_with_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from picsellia_tui.engine.config import load_settings

    for k in list(os.environ):
        if k.startswith("PICSELLIA_TUI_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))

    def same(config: Path | None = None, **overrides: object) -> None:
        s = load_settings(config, **overrides)
        light = light_settings(config, dict(overrides))
        assert light is not None
        assert (light.data_dir, light.database, light.executor, light.processings_dir) == (
            s.data_dir,
            s.database_path,
            s.executor,
            s.processings_dir,
        )

    same()
    same(data_dir=tmp_path / "d1", executor="process")
    monkeypatch.setenv("PICSELLIA_TUI_PROCESSINGS_DIR", str(tmp_path / "p"))
    same()
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'processings_dir = "{tmp_path / "q"}"\ndatabase = "{tmp_path / "x.db"}"\n')
    same(cfg)
    monkeypatch.delenv("PICSELLIA_TUI_PROCESSINGS_DIR")
    same(cfg)
    assert light_settings(tmp_path / "missing.toml", {}) is None
    cfg.write_text('executor = "kubernetes"\n')
    assert light_settings(cfg, {}) is None
