"""onnx-to-ort on the demo models: the .ort file loads and predicts like the ONNX one."""

from __future__ import annotations

import onnxruntime as ort
import pytest
from processing_harness import RunOutcome, direct_accuracy

from picsellia_tui.demo.models import DemoModel

PROCESSING = "onnx-to-ort"


@pytest.fixture(params=["digits-mlp", "digits-cnn"])
def converted(request, demo_models, module_runs) -> tuple[DemoModel, RunOutcome]:
    model = demo_models[request.param]
    return model, module_runs(PROCESSING, model.files_dir).check()


def test_ort_model_runs_with_the_same_accuracy(converted) -> None:
    demo, run = converted
    output = run.outputs / "model.ort"
    assert output.read_bytes()[4:8] == b"ORTM"  # the ORT flatbuffers file identifier
    accuracy = direct_accuracy(output, demo.files_dir / "eval.npz")
    assert accuracy == pytest.approx(demo.metrics["accuracy"], abs=0.005)
    assert run.metrics["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert run.metrics["size_bytes"] == output.stat().st_size
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]


def test_result_and_files(converted) -> None:
    demo, run = converted
    assert run.result["framework"] == "ort"
    assert run.result["tags"] == ["ort"]
    assert run.result["labels"] == demo.labels
    names = sorted(p.name for p in run.outputs.iterdir())
    assert names == [
        "eval.npz",
        "labels.json",
        "model.ort",
        "model.required_operators.config",
        "result.json",
    ]
    config = (run.outputs / "model.required_operators.config").read_text()
    assert "ai.onnx;" in config and "ArgMax" in config
    assert str(run.outputs) not in config  # no machine path leaks into the version


def test_basic_level_keeps_standard_operators(demo_models, run_processing) -> None:
    demo = demo_models["digits-mlp"]
    run = run_processing(
        PROCESSING, demo.files_dir, parameters={"optimization_level": "basic"}
    ).check()
    config = (run.outputs / "model.required_operators.config").read_text()
    assert "com.microsoft" not in config  # 'all' fuses into contrib ops, 'basic' does not
    assert direct_accuracy(run.outputs / "model.ort", demo.files_dir / "eval.npz") == (
        pytest.approx(demo.metrics["accuracy"], abs=0.005)
    )
