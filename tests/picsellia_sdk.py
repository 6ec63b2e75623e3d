"""A processing written with the real picsellia SDK (tests/fixtures/proc_sdk), run
end to end by an engine (process or Docker executor, local or ssh:// host), with
what every such run must show: shared by tests/core and tests/docker."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import requests

from picsellia_tui.engine.core import Engine
from picsellia_tui.storage.logfile.reader import LogReader
from picsellia_tui.storage.models import Run

SDK_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "proc_sdk"
SDK_IMAGE = "picsellia-tui/test-sdk:1.0.0"
MODEL_BYTES = b"\x08\x07fake onnx model bytes" * 1000
MARK = "\x1b[2m[api]\x1b[22m "


def import_sdk_keeping_loggers() -> Any:
    """Import Picsellia's SDK into the test process without its side effect on ours:
    its `__init__` runs `logging.config.dictConfig`, which disables every logger that
    already exists (the engine's included), so a later test in the same process saw
    the engine log nothing. The engine itself never imports the SDK."""
    import pytest

    manager = logging.Logger.manager
    before = {
        name: lg.disabled
        for name, lg in manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    }
    sdk = pytest.importorskip("picsellia")
    for name, disabled in before.items():
        logging.getLogger(name).disabled = disabled
    return sdk


def add_sdk_processing(processings_dir: Path) -> None:
    shutil.copytree(SDK_FIXTURE, processings_dir / "test-sdk")


def checks(texts: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in texts:
        if t.startswith("CHECK "):
            _, key, value = t.split(" ", 2)
            out.setdefault(key, []).append(value)
    return out


def _cli_logs(settings: Any, job_id: int) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICSELLIA_TUI_")}
    env.update(
        PICSELLIA_TUI_DATA_DIR=str(settings.data_dir),
        PICSELLIA_TUI_PROCESSINGS_DIR=str(settings.processings_dir),
    )
    exe = Path(sys.executable).with_name("picsellia-tui")
    done = subprocess.run(
        [str(exe), "jobs", "logs", str(job_id)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


async def run_sdk_suite(e: Engine, tmp: Path, *, big_mb: int = 0) -> None:
    """Success (by organization name and by id), logs, files, multipart store,
    a token confined to its run, and the failing variants."""
    src = tmp / "src-sdk"
    src.mkdir()
    (src / "model.onnx").write_bytes(MODEL_BYTES)
    await e.import_version("m", "v1", [src / "model.onnx"], framework="onnx")
    other = await e.import_version("other", "v1", [src / "model.onnx"], framework="onnx")

    def other_uuid() -> str:
        from picsellia_tui.engine.picsellia_api.ids import Ids

        return Ids(e.ws.workspace_id).encode("version", other.id)

    job = await e.launch(
        "test-sdk",
        "m/v1",
        {"lines": "1000", "big_mb": str(big_mb), "probe_version": other_uuid()},
    )
    run = await e.wait_run(job.runs[0].id)
    records = LogReader(Path(run.log_path)).records(0, 10_000)
    texts = [r.text for r in records]
    assert run.status == "succeeded", (run.error_summary, texts[-20:])
    got = checks(texts)
    assert got["org"] == ["default"]
    assert got["status"] == ["RUNNING", "SUCCEEDED"]
    assert got["files"] == ["model.onnx"]
    assert got["sha256"] == [hashlib.sha256(MODEL_BYTES).hexdigest()]
    assert got["probe"] == ["forbidden"]  # another run's version
    # The api lines, in order, marked, with the section header and the bar's last state.
    api = [r.text.removeprefix(MARK) for r in records if r.stream == "api"]
    assert api[0] == "\x1b[1m── Logging ──\x1b[22m"
    assert api[1:1001] == [f"api line {i}" for i in range(1000)]
    assert api[1001:1003] == ["progress 100%", "after the bar"]
    shown = _cli_logs(e.settings, job.id)
    at = shown.index("[api] api line 0")
    assert [x for x in shown[at:] if x.startswith("[api] api line")] == [
        f"[api] api line {i}" for i in range(1000)
    ], [x for x in shown[at:] if not x.startswith("[api] api line")][:5]
    # The new version: its files, its lineage; the target updated.
    new = await e.version("m/v1-sdk")
    assert new.origin_job_id == job.id and new.parent == "m/v1"
    assert run.output_version_id == new.id  # the run's output: the version it created
    assert (await e.job(job.id)).output_label == "(versions it makes via the Picsellia API)"
    files = {f.path: f for f in new.files}
    assert "small.txt" in files
    if big_mb:
        assert files["big.bin"].size == big_mb * 1024 * 1024
        assert files["big.bin"].sha256 == got["big_sha256"][0]
    target = await e.version("m/v1")
    assert sorted(f.path for f in target.files) == ["model.onnx", "small.txt"]
    # The token: masked in the log, in no file, refused once the run is over.
    service = e.api.service
    assert service is not None and service.grants.by_run(run.id) is None

    def created() -> str:
        with e.ws.db.read() as sess:
            r = sess.get(Run, run.id)
            assert r is not None
            return r.created_at.isoformat()

    token = service.token_for(run.id, await anyio.to_thread.run_sync(created))
    assert any(t.startswith("my token is ") for t in texts)
    for p in (e.settings.database_path, Path(run.log_path)):
        assert token.encode() not in p.read_bytes()
    assert service.endpoint is not None
    url = f"{service.endpoint.tcp_url}/api/home/ping"
    answer = await anyio.to_thread.run_sync(
        lambda: requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    )
    assert answer.status_code == 403 and answer.text.count("\n") == 0

    # By organization id; FAILED posted and exit 1.
    bad = await e.launch("test-sdk", "m/v1", {"outcome": "fail", "org_by": "id", "lines": "3"})
    r = await e.wait_run(bad.runs[0].id)
    assert r.status == "failed" and r.exit_code == 1, r.error_summary
    assert checks([x.text for x in LogReader(Path(r.log_path)).records(0, 100)])["org"] == [
        "default"
    ]
    # SUCCEEDED posted but exit 1: the exit code decides, the run says so.
    liar = await e.launch("test-sdk", "m/v1", {"outcome": "claim-success-exit-1", "lines": "0"})
    r = await e.wait_run(liar.runs[0].id)
    assert r.status == "failed" and r.exit_code == 1
    assert (r.error_summary or "").startswith(
        "exited with code 1 (the processing reported SUCCEEDED through the Picsellia API"
    ), r.error_summary
