"""onnx-dynamic-quantization on the demo models, run as the process executor does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from processing_harness import RunOutcome, direct_accuracy

from picsellia_tui.demo.models import DemoModel

PROCESSING = "onnx-dynamic-quantization"


@pytest.fixture(params=["digits-mlp", "digits-cnn"])
def quantized(request, demo_models, module_runs) -> tuple[DemoModel, RunOutcome]:
    model = demo_models[request.param]
    return model, module_runs(PROCESSING, model.files_dir).check()


def test_int8_model_is_under_40_percent_and_keeps_accuracy(quantized) -> None:
    demo, run = quantized
    source, output = demo.files_dir / "model.onnx", run.outputs / "model.onnx"
    assert output.stat().st_size < 0.40 * source.stat().st_size
    accuracy_before = direct_accuracy(source, demo.files_dir / "eval.npz")
    accuracy_after = direct_accuracy(output, demo.files_dir / "eval.npz")
    assert accuracy_after >= accuracy_before - 0.01

    metrics = run.metrics
    assert metrics["size_bytes"] == output.stat().st_size
    assert metrics["size_bytes_before"] == source.stat().st_size
    assert metrics["accuracy"] == pytest.approx(accuracy_after, abs=1e-6)
    assert metrics["accuracy_before"] == pytest.approx(accuracy_before, abs=1e-6)


def test_weights_are_integer_operators(quantized) -> None:
    demo, run = quantized
    graph = onnx.load(run.outputs / "model.onnx").graph
    ops = {n.op_type for n in graph.node}
    assert "MatMulInteger" in ops and "MatMul" not in ops
    if demo.model_name == "digits-cnn":
        assert "ConvInteger" in ops and "Conv" not in ops
    int8 = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert sum(int(np.prod(t.dims)) for t in int8) >= 0.99 * demo.metrics["parameters"]
    assert run.metrics["quantized_nodes"] == 3


def test_result_and_carried_files(quantized) -> None:
    demo, run = quantized
    result = run.result
    assert result["framework"] == "onnx"
    assert "int8" in result["tags"]
    assert result["labels"] == demo.labels
    for name in ("eval.npz", "labels.json"):
        assert (run.outputs / name).read_bytes() == (demo.files_dir / name).read_bytes()
    assert "quantizing weights to QInt8" in run.stdout
    assert "accuracy:" in run.stdout


def test_parameters_reach_the_quantizer(demo_models, run_processing) -> None:
    demo = demo_models["digits-mlp"]
    run = run_processing(
        PROCESSING,
        demo.files_dir,
        parameters={"weight_type": "QUInt8", "per_channel": True, "reduce_range": False},
    ).check()
    graph = onnx.load(run.outputs / "model.onnx").graph
    initializers = {t.name: t for t in graph.initializer}
    matmuls = [n for n in graph.node if n.op_type == "MatMulInteger"]
    weight = initializers[matmuls[0].input[1]]
    assert weight.data_type == onnx.TensorProto.UINT8
    # per channel: one weight scale per output unit (256, 128, 10), not one per tensor
    scales = [list(t.dims) for name, t in initializers.items() if name.endswith("weight_scale")]
    assert sorted(scales) == [[10], [128], [256]]
    assert run.metrics["accuracy"] >= demo.metrics["accuracy"] - 0.01


def test_a_model_without_weights_is_refused(tmp_path: Path, run_processing) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["output"])],
        "relu",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, [None, 4])],
        [numpy_helper.from_array(np.zeros(1, np.float32), "unused")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder = tmp_path / "relu"
    folder.mkdir()
    onnx.save(model, folder / "model.onnx")
    run = run_processing(PROCESSING, folder)
    assert run.returncode == 2
    assert "error: nothing was quantized" in run.stderr
    assert not (run.outputs / "model.onnx").exists()
