"""onnx-to-openvino on the demo models: the IR compiles on OpenVINO's CPU plugin."""

from __future__ import annotations

import pytest
from processing_harness import RunOutcome, openvino_accuracy

from picsellia_tui.demo.models import DemoModel

PROCESSING = "onnx-to-openvino"


@pytest.fixture(params=["digits-mlp", "digits-cnn"])
def converted(request, demo_models, module_runs) -> tuple[DemoModel, RunOutcome]:
    model = demo_models[request.param]
    return model, module_runs(PROCESSING, model.files_dir).check()


def test_ir_runs_on_openvino_with_the_same_accuracy(converted) -> None:
    demo, run = converted
    xml, weights = run.outputs / "model.xml", run.outputs / "model.bin"
    accuracy = openvino_accuracy(xml, demo.files_dir / "eval.npz")
    assert accuracy >= demo.metrics["accuracy"] - 0.01
    assert run.metrics["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert run.metrics["accuracy_before"] == pytest.approx(demo.metrics["accuracy"], abs=1e-6)
    assert run.metrics["size_bytes"] == xml.stat().st_size + weights.stat().st_size
    # float16 weights: the .bin holds about 2 bytes a parameter
    assert weights.stat().st_size == pytest.approx(2 * demo.metrics["parameters"], rel=0.05)


def test_result(converted) -> None:
    demo, run = converted
    assert run.result["framework"] == "openvino"
    assert run.result["tags"] == ["openvino", "fp16"]
    assert run.result["labels"] == demo.labels
    assert (run.outputs / "eval.npz").is_file()


def test_without_compression_weights_stay_float32(demo_models, run_processing) -> None:
    demo = demo_models["digits-mlp"]
    run = run_processing(PROCESSING, demo.files_dir, parameters={"compress_to_fp16": False})
    run.check()
    weights = run.outputs / "model.bin"
    assert weights.stat().st_size == pytest.approx(4 * demo.metrics["parameters"], rel=0.05)
    assert run.result["tags"] == ["openvino"]
    assert openvino_accuracy(run.outputs / "model.xml", demo.files_dir / "eval.npz") == (
        pytest.approx(demo.metrics["accuracy"], abs=1e-6)
    )


def test_operators_openvino_lacks_fail_clearly(skl2onnx_model_dir, run_processing) -> None:
    run = run_processing(PROCESSING, skl2onnx_model_dir)
    assert run.returncode == 2
    assert "error: OpenVINO cannot convert model.onnx" in run.stderr
    assert "ArrayFeatureExtractor" in run.stderr
    assert "Traceback" not in run.stderr
