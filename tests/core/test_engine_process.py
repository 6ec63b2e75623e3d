"""The engine end to end through the process executor: real SQLite, real
subprocesses, real files."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import anyio
import pytest

from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.errors import Incompatible, InvalidInput, NotFound, RerunRefused
from picsellia_tui.storage.logfile.reader import LogReader
from tests.core.helpers import make_settings, model_file, stored_by_stream

pytestmark = pytest.mark.anyio


async def _seed(engine: Engine, tmp: Path) -> None:
    await engine.import_version("m", "v1", [model_file(tmp)], framework="onnx", labels=["a", "b"])


def _row_counts(db: Path) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        return {
            t: con.execute(f"select count(*) from {t}").fetchone()[0]
            for t in ("job", "run", "run_event", "model_version", "version_file")
        }
    finally:
        con.close()


async def test_success_yields_version_with_lineage(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    async with Engine(s, supervise=True) as e:
        await _seed(e, tmp_path)
        job = await e.launch("test-copy", "m/v1", {"lines": "4"})
        run = await e.wait_run(job.runs[0].id)
        assert run.status == "succeeded", run.error_summary
        assert run.exit_code == 0
        out = await e.version(str(run.output_version_id))
        assert out.origin_job_id == job.id
        assert out.parent == "m/v1"
        assert out.name == "v1-copy"
        assert out.tags == ["copied"] and out.metrics == {"files": 1}
        assert out.labels == ["a", "b"]
        data = model_file(tmp_path).read_bytes()
        (f,) = out.files
        assert f.path == "model.onnx"
        assert f.sha256 == hashlib.sha256(data).hexdigest()
        blob = s.data_dir / "blobs" / f.sha256[:2] / f.sha256[2:]
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == f.sha256
        # Per stream: the order between stdout and stderr is not promised.
        assert stored_by_stream(run.log_path) == {
            "stdout": [f"starting job {job.id} run {run.id} attempt 1"]
            + [f"line {i}" for i in range(4)],
            "stderr": ["to stderr", "done"],
        }


async def test_failure_keeps_stack_trace(tmp_path: Path) -> None:
    async with Engine(make_settings(tmp_path), supervise=True) as e:
        await _seed(e, tmp_path)
        job = await e.launch("test-copy", "m/v1", {"fail": "true"})
        run = await e.wait_run(job.runs[0].id)
        assert run.status == "failed"
        assert run.exit_code == 1
        assert run.error_summary is not None
        assert "Traceback (most recent call last)" in run.error_summary
        assert "RuntimeError: asked to fail" in run.error_summary
        assert run.output_version_id is None


async def test_rerun_same_parameters_and_refused_while_active(tmp_path: Path) -> None:
    async with Engine(make_settings(tmp_path), supervise=True) as e:
        await _seed(e, tmp_path)
        job = await e.launch("test-copy", "m/v1", {"sleep": "1.5", "lines": "2"})
        await e.wait_run(job.runs[0].id, lambda r: r.status == "running")
        with pytest.raises(RerunRefused, match="already has run #1"):
            await e.rerun(job.id)
        await e.wait_run(job.runs[0].id)
        run2 = await e.rerun(job.id)
        assert run2.attempt == 2
        run2 = await e.wait_run(run2.id)
        assert run2.status == "succeeded"
        j = await e.job(job.id)
        assert [r.attempt for r in j.runs] == [1, 2]
        assert j.attempts == 2 and j.status == "succeeded"
        assert j.parameters["sleep"] == 1.5 and j.parameters["lines"] == 2
        ctx_line = LogReader(Path(run2.log_path)).record(0).text
        assert ctx_line.endswith("attempt 2")
        # The second attempt's version got a fresh name, not a clash.
        v2 = await e.version(str(run2.output_version_id))
        assert v2.name == "v1-copy-2"


async def test_cancel_ends_killed_within_grace(tmp_path: Path) -> None:
    async with Engine(make_settings(tmp_path, cancel_grace_seconds=2.0), supervise=True) as e:
        await _seed(e, tmp_path)
        job = await e.launch("test-copy", "m/v1", {"sleep": "60"})
        await e.wait_run(job.runs[0].id, lambda r: r.status == "running")
        t0 = anyio.current_time()
        await e.cancel(job.id)
        with anyio.fail_after(10):
            run = await e.wait_run(job.runs[0].id)
        assert run.status == "killed"
        assert anyio.current_time() - t0 < 2.0 + 5
        assert run.output_version_id is None


async def test_cancel_pending_run(tmp_path: Path) -> None:
    async with Engine(make_settings(tmp_path)) as e:  # nobody supervises: stays pending
        await _seed(e, tmp_path)
        job = await e.launch("test-copy", "m/v1")
        run = await e.cancel(job.id)
        assert run.status == "killed"


async def test_bad_input_changes_nothing(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    async with Engine(s) as e:
        await _seed(e, tmp_path)
        before = _row_counts(s.database_path)
        cases = [
            (InvalidInput, "parameter 'lines': 'many' is not an integer", {"lines": "many"}),
            (InvalidInput, "above the maximum", {"sleep": "601"}),
            (InvalidInput, "not one of copy, empty, bad-result", {"mode": "zip"}),
            (InvalidInput, "unknown parameter", {"linez": "1"}),
        ]
        for exc, msg, params in cases:
            with pytest.raises(exc, match=msg):
                await e.launch("test-copy", "m/v1", params)
        with pytest.raises(NotFound, match="no processing named 'nope'"):
            await e.launch("nope", "m/v1")
        with pytest.raises(NotFound, match="has no version 'v9'"):
            await e.launch("test-copy", "m/v9")
        with pytest.raises(InvalidInput, match="version name"):
            await e.launch("test-copy", "m/v1", output_version_name="../evil")
        with pytest.raises(InvalidInput, match="already has a version 'v1'"):
            await e.launch("test-copy", "m/v1", output_version_name="v1")
        await e.import_version("m", "tf", [model_file(tmp_path / "x")], framework="tensorflow")
        with pytest.raises(Incompatible, match="needs framework onnx, version is tensorflow"):
            await e.launch("test-copy", "m/tf")
        after = _row_counts(s.database_path)
        assert after["job"] == before["job"] == 0
        assert after["run"] == 0


async def test_secret_is_masked_and_not_stored_in_clear(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    secret = "s3cr3t-t0ken-value"
    async with Engine(s, supervise=True) as e:
        await _seed(e, tmp_path)
        job = await e.launch("test-copy", "m/v1", {"token": secret})
        run = await e.wait_run(job.runs[0].id)
        assert run.status == "succeeded"
        texts = [r.text for r in LogReader(Path(run.log_path)).records(0, 50)]
        assert "using token ••••••" in texts
        assert secret not in Path(run.log_path).read_text()
        view = await e.job(job.id)
        assert secret not in view.model_dump_json()
    for f in s.data_dir.rglob("*"):
        if f.is_file() and f.name != "secret.key":
            assert secret.encode() not in f.read_bytes(), f


async def test_bad_result_json_fails_cleanly(tmp_path: Path) -> None:
    async with Engine(make_settings(tmp_path), supervise=True) as e:
        await _seed(e, tmp_path)
        job = await e.launch("test-copy", "m/v1", {"mode": "bad-result"})
        run = await e.wait_run(job.runs[0].id)
        assert run.status == "failed"
        assert run.error_summary is not None
        assert run.error_summary.startswith("outputs refused: result.json is not valid JSON")
        assert len(await e.versions()) == 1


async def test_concurrency_limit_queues_runs(tmp_path: Path) -> None:
    async with Engine(make_settings(tmp_path, concurrency=1), supervise=True) as e:
        await _seed(e, tmp_path)
        a = await e.launch("test-copy", "m/v1", {"sleep": "1"})
        b = await e.launch("test-copy", "m/v1", {"sleep": "0"})
        await e.wait_run(a.runs[0].id, lambda r: r.status == "running")
        assert (await e.run(b.runs[0].id)).status == "pending"
        rb = await e.wait_run(b.runs[0].id)
        ra = await e.run(a.runs[0].id)
        assert ra.status == rb.status == "succeeded"
        assert ra.ended_at is not None and rb.started_at is not None
        assert rb.started_at >= ra.ended_at


async def test_log_retention_prunes_old_logs_only(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from picsellia_tui.storage.models import Run

    s = make_settings(tmp_path, log_retention_days=7)
    async with Engine(s, supervise=True) as e:
        await _seed(e, tmp_path)
        old = await e.launch("test-copy", "m/v1")
        new = await e.launch("test-copy", "m/v1")
        r_old = await e.wait_run(old.runs[0].id)
        r_new = await e.wait_run(new.runs[0].id)
        with e.ws.db.write() as sess:
            row = sess.get(Run, r_old.id)
            assert row is not None
            row.ended_at = datetime.now(UTC) - timedelta(days=8)
            sess.add(row)
        assert e.prune_logs() == 1
        assert not Path(r_old.log_path).exists()
        assert Path(r_new.log_path).exists()
        assert (await e.run(r_old.id)).status == "succeeded"  # the history stays


async def test_private_processing_from_an_image(tmp_path: Path) -> None:
    from picsellia_tui.engine.errors import DefinitionError

    async with Engine(make_settings(tmp_path)) as e:
        p = await e.create_processing(
            definition={
                "name": "from-image",
                "image": "registry.example/team/convert:2",
                "task": "MODEL_CONVERSION",
                "command": ["python", "/app/run.py"],
                "constraints": {"frameworks": ["onnx"]},
            }
        )
        assert p.visibility == "private" and p.owner == e.settings.user and p.source_dir is None
        with pytest.raises(DefinitionError, match="image: 'bad image' is not a Docker image"):
            await e.create_processing(
                definition={
                    "name": "x",
                    "image": "bad image",
                    "task": "MODEL_CONVERSION",
                    "command": ["x"],
                }
            )
        with pytest.raises(InvalidInput, match="public processing"):
            # a bundled name is read-only
            await e.create_processing(
                definition={
                    "name": "test-copy",
                    "image": "a:b",
                    "task": "MODEL_CONVERSION",
                    "command": ["x"],
                }
            )


async def test_default_version_name_stays_within_the_name_limit(tmp_path: Path) -> None:
    """A 64-character version name: the new version's default name is cut so that
    its -2 suffix fits (it used to be 66 characters and break the name rule)."""
    from picsellia_tui.storage.domain import VERSION_NAME_RE

    base = "v" * 64
    async with Engine(make_settings(tmp_path), supervise=True) as e:
        await e.import_version("m", base, [model_file(tmp_path)], framework="onnx")
        suggested = await e.suggest_version_name(f"m/{base}", "test-copy")
        job = await e.launch("test-copy", f"m/{base}", {"lines": "1"})
        assert job.output_version_name == suggested == "v" * 62 + "-2"
        assert VERSION_NAME_RE.match(suggested)
        run = await e.wait_run(job.runs[0].id)
        assert run.status == "succeeded", run.error_summary
        out = await e.version(str(run.output_version_id))
        assert out.name == suggested
        # Taken now: the next one counts on, still within the limit.
        again = await e.suggest_version_name(f"m/{base}", "test-copy")
        assert again == "v" * 62 + "-3"
        # The engine and the launch form share the rule: a name given as a base too.
        assert await e.suggest_version_name(f"m/{base}", "test-copy", "x" * 70) == "x" * 64
