"""Where a run's files wait for it on the engine's machine (see runfiles.py); no
HTTP import here: the executors and the supervisor use it."""

from __future__ import annotations

import json
from pathlib import Path

from picsellia_tui.engine.executors.base import InputFile

CONTEXT = "context.json"
INPUTS = "inputs.json"
OUTPUTS = "outputs.tar"
MAX_OUTPUTS = 64 << 30  # the output quota is checked when collected; this bounds the disk


def files_dir(scratch: Path, run_id: int) -> Path:
    return scratch / f"run-files-{run_id}"


def write_run_files(folder: Path, context_json: bytes, inputs: list[InputFile]) -> None:
    """What the run's staging step will fetch (the executor calls this at start)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    (folder / CONTEXT).write_bytes(context_json)
    manifest = [{"path": f.path, "source": str(f.source)} for f in inputs]
    (folder / INPUTS).write_text(json.dumps(manifest))
