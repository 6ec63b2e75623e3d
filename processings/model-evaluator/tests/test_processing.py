"""model-evaluator on the demo models and on versions the other processings make."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from onnxconverter_common import float16
from onnxruntime.quantization import QuantType, quantize_dynamic
from processing_harness import RunOutcome, direct_accuracy

from picsellia_tui.demo.models import DemoModel

PROCESSING = "model-evaluator"


def derived_version(demo: DemoModel, folder: Path, model_file: str) -> Path:
    """A version folder with a derived model file and the demo's eval set and labels."""
    folder.mkdir()
    for name in ("eval.npz", "labels.json"):
        shutil.copyfile(demo.files_dir / name, folder / name)
    return folder / model_file


@pytest.fixture(params=["digits-mlp", "digits-cnn"])
def evaluated(request, demo_models, module_runs) -> tuple[DemoModel, RunOutcome]:
    model = demo_models[request.param]
    return model, module_runs(PROCESSING, model.files_dir).check()


def test_metrics_equal_a_direct_computation(evaluated) -> None:
    demo, run = evaluated
    model = demo.files_dir / "model.onnx"
    metrics = run.metrics
    assert metrics["accuracy"] == pytest.approx(
        direct_accuracy(model, demo.files_dir / "eval.npz"), abs=1e-6
    )
    assert metrics["accuracy"] == pytest.approx(demo.metrics["accuracy"], abs=1e-6)
    assert metrics["size_bytes"] == model.stat().st_size
    assert metrics["eval_samples"] == demo.metrics["eval_samples"]
    assert 0 < metrics["latency_p50_ms"] <= metrics["latency_p95_ms"]
    assert metrics["weight_sparsity"] == 0.0


def test_updates_the_input_version_only(evaluated) -> None:
    demo, run = evaluated
    result = run.result
    assert "framework" not in result  # unchanged: update_input keeps the version's own
    # float32, over 128 KiB: nothing to say about precision, and not edge-ready
    assert result.get("tags", []) == []
    assert sorted(p.name for p in run.outputs.iterdir()) == ["evaluation.json", "result.json"]
    report = json.loads((run.outputs / "evaluation.json").read_text())
    matrix = report["confusion_matrix"]["rows_expected_columns_predicted"]
    assert sum(map(sum, matrix)) == demo.metrics["eval_samples"]
    correct = sum(matrix[i][i] for i in range(len(matrix)))
    assert correct / demo.metrics["eval_samples"] == pytest.approx(run.metrics["accuracy"])
    assert report["confusion_matrix"]["labels"] == demo.labels
    assert set(report["per_class_accuracy"]) == set(demo.labels)
    assert report["latency_ms"]["runs"] == 100


def test_quantized_version_is_tagged_int8_and_edge_ready(
    demo_models, run_processing, tmp_path
) -> None:
    demo = demo_models["digits-mlp"]
    model = derived_version(demo, tmp_path / "int8", "model.onnx")
    quantize_dynamic(str(demo.files_dir / "model.onnx"), str(model), weight_type=QuantType.QInt8)
    run = run_processing(PROCESSING, model.parent, parameters={"runs": 20}).check()
    assert run.result["tags"] == ["int8", "edge-ready"]
    assert run.metrics["accuracy"] == pytest.approx(
        direct_accuracy(model, demo.files_dir / "eval.npz"), abs=1e-6
    )
    assert run.metrics["size_bytes"] == model.stat().st_size < 128 * 1024


def test_quantized_ort_version_is_read_from_its_flatbuffers(
    demo_models, run_processing, tmp_path
) -> None:
    demo = demo_models["digits-cnn"]
    quantized = tmp_path / "int8.onnx"
    quantize_dynamic(str(demo.files_dir / "model.onnx"), str(quantized))
    model = derived_version(demo, tmp_path / "int8-ort", "model.ort")
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(model)
    options.add_session_config_entry("session.save_model_format", "ORT")
    ort.InferenceSession(str(quantized), options, providers=["CPUExecutionProvider"])
    run = run_processing(
        PROCESSING,
        model.parent,
        framework="ort",
        parameters={"runs": 20, "edge_max_size_kb": 1},
    ).check()
    assert run.result["tags"] == ["int8"]  # 1 KiB at most: too big to be edge-ready
    assert "edge-ready: no (size" in run.stdout
    assert run.metrics["accuracy"] == pytest.approx(
        direct_accuracy(model, demo.files_dir / "eval.npz"), abs=1e-6
    )


@pytest.mark.filterwarnings("ignore:the float32 number:UserWarning")
def test_float16_version_is_tagged_fp16(demo_models, run_processing, tmp_path) -> None:
    demo = demo_models["digits-cnn"]
    model = derived_version(demo, tmp_path / "fp16", "model.onnx")
    onnx.save(float16.convert_float_to_float16(onnx.load(demo.files_dir / "model.onnx")), model)
    run = run_processing(PROCESSING, model.parent, parameters={"runs": 20}).check()
    assert run.result["tags"] == ["fp16", "edge-ready"]
    assert run.metrics["accuracy"] == pytest.approx(
        direct_accuracy(model, demo.files_dir / "eval.npz"), abs=1e-6
    )


def test_without_an_eval_set_latency_is_still_measured(demo_models, run_processing, tmp_path):
    folder = tmp_path / "bare"
    folder.mkdir()
    shutil.copyfile(demo_models["digits-cnn"].files_dir / "model.onnx", folder / "model.onnx")
    run = run_processing(PROCESSING, folder, parameters={"runs": 10}).check()
    assert "accuracy" not in run.metrics
    assert run.metrics["latency_p95_ms"] > 0
    assert "no eval.npz in the version" in run.stdout
