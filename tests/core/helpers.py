"""A real workspace in a temp dir: real SQLite file, real subprocesses."""

from __future__ import annotations

import shutil
from pathlib import Path

from picsellia_tui.engine.config import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def make_settings(tmp: Path, **kw: object) -> Settings:
    procs = tmp / "processings"
    if not procs.exists():
        procs.mkdir()
        shutil.copytree(FIXTURES / "proc_copy", procs / "test-copy")
    values: dict[str, object] = dict(
        data_dir=tmp / "data",
        executor="process",
        processings_dir=procs,
        cancel_grace_seconds=2.0,
        heartbeat_seconds=0.5,
        lease_timeout_seconds=3.0,
        reconcile_seconds=1.0,
        concurrency=4,
    )
    values.update(kw)
    return Settings(**values)  # type: ignore[arg-type]


def model_file(tmp: Path, content: bytes = b"fake onnx bytes") -> Path:
    p = tmp / "src" / "model.onnx"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content)
    return p
