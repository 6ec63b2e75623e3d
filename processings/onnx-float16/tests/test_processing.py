"""onnx-float16 on the demo models and on a typical skl2onnx export."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from processing_harness import RunOutcome, direct_accuracy, load_main

from picsellia_tui.demo.models import DemoModel

PROCESSING = "onnx-float16"


@pytest.fixture(params=["digits-mlp", "digits-cnn"])
def converted(request, demo_models, module_runs) -> tuple[DemoModel, RunOutcome]:
    model = demo_models[request.param]
    return model, module_runs(PROCESSING, model.files_dir).check()


def test_float16_halves_the_model_and_keeps_accuracy(converted) -> None:
    demo, run = converted
    source, output = demo.files_dir / "model.onnx", run.outputs / "model.onnx"
    ratio = output.stat().st_size / source.stat().st_size
    assert 0.45 < ratio < 0.55
    accuracy = direct_accuracy(output, demo.files_dir / "eval.npz")
    assert accuracy >= demo.metrics["accuracy"] - 0.01
    assert run.metrics["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert run.metrics["accuracy_before"] == pytest.approx(demo.metrics["accuracy"], abs=1e-6)
    assert run.metrics["size_ratio"] == pytest.approx(ratio, abs=1e-3)


def test_weights_are_float16_and_io_stays_float32(converted) -> None:
    _, run = converted
    model = onnx.load(run.outputs / "model.onnx")
    weights = [t for t in model.graph.initializer if len(t.dims) >= 2]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    assert all(t.raw_data for t in weights)  # packed: 2 bytes a value
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert run.result["tags"] == ["fp16"]
    assert run.result["framework"] == "onnx"
    assert (run.outputs / "eval.npz").is_file() and (run.outputs / "labels.json").is_file()


def test_keep_io_types_off_gives_a_float16_interface(demo_models, run_processing) -> None:
    demo = demo_models["digits-cnn"]
    run = run_processing(PROCESSING, demo.files_dir, parameters={"keep_io_types": False}).check()
    model = onnx.load(run.outputs / "model.onnx")
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert run.metrics["accuracy"] == pytest.approx(
        direct_accuracy(run.outputs / "model.onnx", demo.files_dir / "eval.npz"), abs=1e-6
    )


def test_skl2onnx_export_with_its_leading_cast_converts(skl2onnx_model_dir, run_processing) -> None:
    """onnxconverter-common alone makes a graph ONNX Runtime refuses for such models."""
    run = run_processing(PROCESSING, skl2onnx_model_dir).check()
    assert "removed 1 Cast node(s)" in run.stdout
    accuracy = direct_accuracy(run.outputs / "model.onnx", skl2onnx_model_dir / "eval.npz")
    assert accuracy >= run.metrics["accuracy_before"] - 0.01
    # 2,400 weights only: the graph's own bytes weigh more than in the demo models
    assert run.metrics["size_ratio"] < 0.7


def test_remove_noop_casts_keeps_real_casts(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    main = load_main(PROCESSING)
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["x"], ["same"], to=TensorProto.FLOAT),
            helper.make_node("Relu", ["same"], ["r"]),
            helper.make_node("Cast", ["r"], ["as_int"], to=TensorProto.INT64),
        ],
        "casts",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("as_int", TensorProto.INT64, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert main.remove_noop_casts(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Relu", "Cast"]
    assert list(model.graph.node[0].input) == ["x"]
    onnx.checker.check_model(model, full_check=True)
