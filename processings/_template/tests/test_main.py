"""Runs main.py as the engine's process executor does: no Docker, no other module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def run(tmp_path: Path, parameters: dict[str, object]) -> subprocess.CompletedProcess[str]:
    inputs, outputs = tmp_path / "inputs", tmp_path / "outputs"
    (inputs / "extra").mkdir(parents=True)
    outputs.mkdir()
    (inputs / "model.onnx").write_bytes(b"\x08\x07model bytes")
    (inputs / "extra" / "labels.json").write_text('["cat", "dog"]')
    context = {
        "job_id": "job",
        "run_id": "run",
        "attempt": 1,
        "processing": {"name": "template-test", "version": "0.1.0"},
        "parameters": parameters,
        "target": {"type": "model_version", "model": "pets", "version": "v1"},
        "output_version_name": "v2",
        "paths": {"inputs": str(inputs), "outputs": str(outputs)},
    }
    context_path = tmp_path / "context.json"
    context_path.write_text(json.dumps(context))
    env = {**os.environ, "PICSELLIA_CONTEXT": str(context_path)}
    return subprocess.run(
        [sys.executable, "main.py"], cwd=HERE, env=env, capture_output=True, text=True, check=False
    )


def test_copies_every_file_and_tags_the_new_version(tmp_path: Path) -> None:
    proc = run(tmp_path, {"tag": "copied"})
    assert proc.returncode == 0, proc.stderr
    outputs = tmp_path / "outputs"
    assert (outputs / "model.onnx").read_bytes() == b"\x08\x07model bytes"
    assert (outputs / "extra" / "labels.json").read_text() == '["cat", "dog"]'
    result = json.loads((outputs / "result.json").read_text())
    assert result["tags"] == ["copied"]
    assert result["metrics"]["files"] == 2
    assert "[2/2] copied model.onnx" in proc.stdout


def test_missing_context_fails_with_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "PICSELLIA_CONTEXT": str(tmp_path / "missing.json")}
    proc = subprocess.run(
        [sys.executable, "main.py"], cwd=HERE, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: cannot read the run context")
