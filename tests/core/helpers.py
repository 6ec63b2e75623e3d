"""A real workspace in a temp dir: real SQLite file, real subprocesses."""

from __future__ import annotations

import shutil
from pathlib import Path

from picsellia_tui.engine.config import Settings
from picsellia_tui.storage.logfile.reader import LogReader

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


def stored_by_stream(log_path: str | Path) -> dict[str, list[str]]:
    """A stored log's texts, per stream. Only the order within a stream is
    promised (docs/run-contract.md): compare logs stream by stream."""
    out: dict[str, list[str]] = {"stdout": [], "stderr": []}
    with LogReader(Path(log_path)) as reader:
        for r in reader.records(0):
            out.setdefault(r.stream, []).append(r.text)
    return out
