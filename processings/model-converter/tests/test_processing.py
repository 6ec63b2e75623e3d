"""model-converter: every export_format on a demo model, the file choice and signing."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from processing_harness import direct_accuracy, openvino_accuracy

PROCESSING = "model-converter"
EXPECTED_FILES = {
    "onnx": ["model.onnx"],
    "ort": ["model.ort", "model.required_operators.config"],
    "openvino": ["model.bin", "model.xml"],
}


@pytest.mark.parametrize("export_format", ["onnx", "ort", "openvino"])
def test_each_export_format(export_format, demo_models, module_runs) -> None:
    demo = demo_models["digits-cnn"]
    run = module_runs(
        PROCESSING, demo.files_dir, parameters={"export_format": export_format}
    ).check()
    produced = sorted(p.name for p in run.outputs.iterdir())
    assert produced == sorted(
        [*EXPECTED_FILES[export_format], "eval.npz", "labels.json", "result.json"]
    )
    model = run.outputs / EXPECTED_FILES[export_format][-1 if export_format == "openvino" else 0]
    eval_npz = demo.files_dir / "eval.npz"
    if export_format == "openvino":
        accuracy = openvino_accuracy(model, eval_npz)
    else:
        accuracy = direct_accuracy(model, eval_npz)
    assert accuracy >= demo.metrics["accuracy"] - 0.01
    assert run.metrics["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert run.result["framework"] == export_format
    assert export_format in run.result["tags"]
    assert f"converting model.onnx to {export_format}" in run.stdout


def test_signing_key_signs_the_files_and_never_shows(demo_models, run_processing) -> None:
    key = "k3y-only-in-the-env"
    run = run_processing(
        PROCESSING,
        demo_models["digits-mlp"].files_dir,
        parameters={"export_format": "onnx"},
        env={"SIGNING_KEY": key},
    ).check()
    signature = json.loads((run.outputs / "signature.json").read_text())
    assert signature["algorithm"] == "HMAC-SHA256"
    data = (run.outputs / "model.onnx").read_bytes()
    expected = hmac.new(key.encode(), data, hashlib.sha256).hexdigest()
    assert signature["files"] == {"model.onnx": expected}
    for text in (run.stdout, run.stderr, json.dumps(run.result), json.dumps(run.context)):
        assert key not in text


def test_input_model_file_name_picks_the_file(demo_models, run_processing, tmp_path) -> None:
    import shutil

    folder = tmp_path / "renamed"
    shutil.copytree(demo_models["digits-mlp"].files_dir, folder)
    (folder / "model.onnx").rename(folder / "digits.onnx")
    run = run_processing(
        PROCESSING,
        folder,
        parameters={"export_format": "onnx", "input_model_file_name": "digits.onnx"},
    ).check()
    assert (run.outputs / "digits.onnx").is_file()

    missing = run_processing(PROCESSING, folder, parameters={"export_format": "onnx"})
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "error: input file 'model.onnx' not found; "
        "the version has: digits.onnx, eval.npz, labels.json"
    )
