"""onnx-magnitude-pruning on the demo models, and its pruning function."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from processing_harness import RunOutcome, direct_accuracy, load_main

from picsellia_tui.demo.models import DemoModel

PROCESSING = "onnx-magnitude-pruning"
WEIGHT_OPS = {"MatMul", "Gemm", "Conv"}


def weight_sparsity(path) -> tuple[float, list[float]]:
    """Zero share of the MatMul/Conv weights, measured here: overall and per tensor."""
    model = onnx.load(path)
    initializers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    names = {
        name
        for node in model.graph.node
        if node.op_type in WEIGHT_OPS
        for name in node.input
        if name in initializers and initializers[name].ndim >= 2
    }
    arrays = [initializers[n] for n in sorted(names)]
    zeros = sum(int((a == 0).sum()) for a in arrays)
    return zeros / sum(a.size for a in arrays), [float((a == 0).mean()) for a in arrays]


@pytest.fixture(params=["digits-mlp", "digits-cnn"])
def pruned(request, demo_models, module_runs) -> tuple[DemoModel, RunOutcome]:
    model = demo_models[request.param]
    return model, module_runs(PROCESSING, model.files_dir, parameters={"sparsity": 0.6}).check()


def test_reaches_the_asked_sparsity(pruned) -> None:
    _, run = pruned
    overall, per_tensor = weight_sparsity(run.outputs / "model.onnx")
    assert overall == pytest.approx(0.6, abs=0.02)
    assert max(per_tensor) - min(per_tensor) > 0.1  # global scope: one threshold, uneven layers
    assert run.metrics["sparsity"] == pytest.approx(overall, abs=1e-6)
    assert run.metrics["target_sparsity"] == 0.6


def test_metrics_match_a_direct_measurement(pruned) -> None:
    demo, run = pruned
    output = run.outputs / "model.onnx"
    accuracy = direct_accuracy(output, demo.files_dir / "eval.npz")
    assert run.metrics["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert run.metrics["accuracy_before"] == pytest.approx(demo.metrics["accuracy"], abs=1e-6)
    assert run.metrics["size_bytes"] == output.stat().st_size
    # zeros compress: the pruned file gzips far smaller than the dense one
    assert run.metrics["compressed_size_bytes"] < 0.75 * run.metrics["compressed_size_bytes_before"]
    assert run.result["tags"] == ["pruned"]
    assert run.result["labels"] == demo.labels


def test_layer_scope_prunes_every_tensor_alike(demo_models, run_processing) -> None:
    demo = demo_models["digits-cnn"]
    run = run_processing(
        PROCESSING, demo.files_dir, parameters={"sparsity": 0.8, "scope": "layer"}
    ).check()
    overall, per_tensor = weight_sparsity(run.outputs / "model.onnx")
    assert overall == pytest.approx(0.8, abs=0.02)
    assert all(s == pytest.approx(0.8, abs=0.02) for s in per_tensor)


def test_a_sparsity_above_the_maximum_is_refused(demo_models, run_processing) -> None:
    run = run_processing(
        PROCESSING, demo_models["digits-mlp"].files_dir, parameters={"sparsity": 0.99}
    )
    assert run.returncode == 2
    assert "error: parameter 'sparsity': 0.99 is above the maximum 0.95" in run.stderr


def test_prune_function() -> None:
    main = load_main(PROCESSING)
    rng = np.random.default_rng(0)
    weights = {"a": rng.normal(size=(10, 20)), "b": 100 * rng.normal(size=(5, 4))}
    layer = main.prune(weights, 0.25, "layer")
    assert int((layer["a"] == 0).sum()) == 50 and int((layer["b"] == 0).sum()) == 5
    kept = np.abs(weights["a"])[layer["a"] != 0]
    dropped = np.abs(weights["a"])[layer["a"] == 0]
    assert dropped.max() <= kept.min()
    assert (weights["a"] != 0).all()  # inputs are not modified
    globally = main.prune(weights, 0.25, "global")
    assert int((globally["a"] == 0).sum()) == 55  # b's weights are far larger
    assert main.measure(globally).ratio == pytest.approx(55 / 220)
    assert main.prune(weights, 0.0, "global")["a"].tolist() == weights["a"].tolist()
