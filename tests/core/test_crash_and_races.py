"""Two processes racing a re-run, and an engine SIGKILLed mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest

from picsellia_tui.engine.core import Engine
from picsellia_tui.storage.logfile.reader import LogReader
from tests.core.helpers import make_settings, model_file, stored_by_stream

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


def _script(tmp: Path, body: str) -> list[str]:
    code = textwrap.dedent(
        f"""
        import sys, json, anyio
        sys.path.insert(0, {str(ROOT)!r})
        from tests.core.helpers import make_settings
        from picsellia_tui.engine.core import Engine
        from pathlib import Path
        tmp = Path({str(tmp)!r})
        """
    ) + textwrap.dedent(body)
    return [sys.executable, "-c", code]


async def test_two_processes_racing_rerun_make_one_run(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    async with Engine(s, supervise=True) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("test-copy", "m/v1")
        await e.wait_run(job.runs[0].id)
    go = tmp_path / "go"
    racer = _script(
        tmp_path,
        f"""
        import os, time
        async def main():
            async with Engine(make_settings(tmp)) as e:
                while not os.path.exists({str(go)!r}):
                    time.sleep(0.001)
                try:
                    r = await e.rerun({job.id})
                    print(json.dumps({{"ok": r.attempt}}))
                except Exception as exc:
                    print(json.dumps({{"refused": type(exc).__name__, "msg": str(exc)}}))
        anyio.run(main)
        """,
    )
    for _ in range(3):
        go.unlink(missing_ok=True)
        procs = [subprocess.Popen(racer, stdout=subprocess.PIPE, text=True) for _ in range(4)]
        time.sleep(1.5)  # let all four open the workspace
        go.touch()
        outs = [json.loads(p.communicate(timeout=60)[0].strip().splitlines()[-1]) for p in procs]
        ok = [o for o in outs if "ok" in o]
        refused = [o for o in outs if "refused" in o]
        assert len(ok) == 1, outs
        assert all(o["refused"] == "RerunRefused" for o in refused), outs
        # finish that run so the next round can race again
        async with Engine(s, supervise=True) as e:
            j = await e.job(job.id)
            await e.wait_run(j.runs[-1].id)
    async with Engine(s) as e:
        j = await e.job(job.id)
        assert [r.attempt for r in j.runs] == [1, 2, 3, 4]


async def test_engine_sigkilled_mid_run_is_finished_by_next_engine(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    async with Engine(s) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
    ready = tmp_path / "ready.json"
    first = _script(
        tmp_path,
        f"""
        async def main():
            async with Engine(make_settings(tmp), supervise=True) as e:
                job = await e.launch("test-copy", "m/v1", {{"lines": "200", "sleep": "3"}})
                run = await e.wait_run(job.runs[0].id, lambda r: r.status == "running")
                Path({str(ready)!r}).write_text(json.dumps({{"job": job.id, "run": run.id,
                                                           "log": run.log_path}}))
                await anyio.sleep(3600)
        anyio.run(main)
        """,
    )
    proc = subprocess.Popen(first)
    with anyio.fail_after(30):
        while not ready.exists():
            await anyio.sleep(0.05)
    info = json.loads(ready.read_text())
    # Some lines stored, run still going: kill the engine the hard way.
    with anyio.fail_after(10):
        while len(LogReader(Path(info["log"]))) < 50:
            await anyio.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(LogReader(Path(info["log"])))
    assert before >= 50
    async with Engine(s, supervise=True) as e:
        assert (await e.run(info["run"])).status == "running"
        with anyio.fail_after(40):
            run = await e.wait_run(info["run"])
        assert run.status == "succeeded", run.error_summary
        texts = [r.text for r in LogReader(Path(run.log_path)).records(0, 1000)]
        expected = [f"line {i}" for i in range(200)]
        assert [t for t in texts if t.startswith("line ")] == expected
        assert texts.count("done") == 1 and texts.count("to stderr") == 1
        assert len(await e.versions()) == 2


async def test_run_whose_process_vanished_is_failed_with_reason(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    async with Engine(s) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
    ready = tmp_path / "ready.json"
    first = _script(
        tmp_path,
        f"""
        async def main():
            async with Engine(make_settings(tmp), supervise=True) as e:
                job = await e.launch("test-copy", "m/v1", {{"sleep": "30"}})
                run = await e.wait_run(job.runs[0].id, lambda r: r.status == "running")
                Path({str(ready)!r}).write_text(json.dumps({{"run": run.id, "ref": run.ref}}))
                await anyio.sleep(3600)
        anyio.run(main)
        """,
    )
    proc = subprocess.Popen(first)
    with anyio.fail_after(30):
        while not ready.exists():
            await anyio.sleep(0.05)
    info = json.loads(ready.read_text())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    import shutil

    pid = int((Path(info["ref"]) / "pid").read_text().split()[0])
    os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(info["ref"])  # the run folder is gone too
    async with Engine(s, supervise=True) as e:
        with anyio.fail_after(30):
            run = await e.wait_run(info["run"])
        assert run.status == "failed"
        assert run.error_summary and "vanished" in run.error_summary


async def test_cli_launch_returns_and_a_running_engine_adopts_the_run(tmp_path: Path) -> None:
    """`launch` without --wait returns once the run started; the engine of a running
    app/serve takes it over at once (the CLI releases its lease on exit)."""
    s = make_settings(tmp_path, lease_timeout_seconds=120, reconcile_seconds=120)
    async with Engine(s, supervise=True) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        env = {
            **os.environ,
            "PICSELLIA_TUI_DATA_DIR": str(s.data_dir),
            "PICSELLIA_TUI_EXECUTOR": "process",
            "PICSELLIA_TUI_PROCESSINGS_DIR": str(s.processings_dir),
        }
        exe = str(Path(sys.executable).with_name("picsellia-tui"))
        out = await anyio.run_process(
            [exe, "launch", "test-copy", "m/v1", "-p", "sleep=2", "--json"], env=env
        )
        job = json.loads(out.stdout)
        with anyio.fail_after(30):  # far below the 120 s lease timeout
            run = await e.wait_run(job["runs"][0]["id"])
        assert run.status == "succeeded"
        assert stored_by_stream(run.log_path)["stderr"][-1] == "done"
