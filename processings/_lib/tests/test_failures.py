"""Every bundled processing fails in one clear line on a missing or broken model."""

from __future__ import annotations

from pathlib import Path

import pytest
from processing_harness import PROCESSINGS

PUBLIC = sorted(
    p.name
    for p in PROCESSINGS.iterdir()
    if (p / "processing.toml").is_file() and not p.name.startswith("_")
)


def version_folder(tmp_path: Path, model_bytes: bytes | None) -> Path:
    folder = tmp_path / "version"
    folder.mkdir()
    (folder / "labels.json").write_text('["0", "1"]')
    if model_bytes is not None:
        (folder / "model.onnx").write_bytes(model_bytes)
    return folder


@pytest.mark.parametrize("name", PUBLIC)
def test_broken_model(name: str, tmp_path: Path, run_processing) -> None:
    run = run_processing(name, version_folder(tmp_path, b"\x00 definitely not ONNX \xff" * 8))
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines[-1].startswith("error: model.onnx is not"), run.stderr
    assert "Traceback" not in run.stderr
    assert not (run.outputs / "result.json").exists()


@pytest.mark.parametrize("name", PUBLIC)
def test_missing_model(name: str, tmp_path: Path, run_processing) -> None:
    run = run_processing(name, version_folder(tmp_path, None))
    assert run.returncode == 2
    message = run.stderr.strip().splitlines()[-1]
    assert message.startswith("error: ")
    assert "model" in message and "the version has: labels.json" in message
