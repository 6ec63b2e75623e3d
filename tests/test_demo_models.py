"""The demo models: real, small, quick to build, and shaped for the bundled processings."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

np = pytest.importorskip("numpy", reason="the demo models need the 'demo' extra")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")

from picsellia_tui.demo.models import (  # noqa: E402
    INPUT_NAME,
    LABELS,
    DemoModel,
    build_demo_models,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[DemoModel]]:
    dest = tmp_path_factory.mktemp("demo")
    return dest, build_demo_models(dest)


def test_two_models_of_different_architectures(built) -> None:
    _, models = built
    assert [m.model_name for m in models] == ["digits-mlp", "digits-cnn"]
    ops = [{n.op_type for n in onnx.load(m.files_dir / "model.onnx").graph.node} for m in models]
    assert "Conv" not in ops[0] and "MatMul" in ops[0]
    assert {"Conv", "MaxPool", "MatMul"} <= ops[1]
    for m in models:
        assert m.framework == "onnx" and m.version_name == "v1"
        assert m.labels == LABELS
        assert m.description and "demo" in m.tags


def test_files_and_interface(built) -> None:
    dest, models = built
    for m in models:
        assert m.files_dir == dest / m.model_name / m.version_name
        assert [p.name for p in m.files] == ["eval.npz", "labels.json", "model.onnx"]
        assert json.loads((m.files_dir / "labels.json").read_text()) == LABELS
        model = onnx.load(m.files_dir / "model.onnx")
        onnx.checker.check_model(model, full_check=True)
        assert {o.domain for o in model.opset_import} == {""}  # no ai.onnx.ml operators
        assert [i.name for i in model.graph.input] == [INPUT_NAME]
        dims = model.graph.input[0].type.tensor_type.shape.dim
        assert [d.dim_param or d.dim_value for d in dims] == ["batch", 64]
        assert [o.name for o in model.graph.output] == ["label", "probabilities"]
        with np.load(m.files_dir / "eval.npz") as data:
            assert data["X"].dtype == np.float32 and data["X"].shape[1:] == (64,)
            assert data["y"].dtype == np.int64 and len(data["y"]) == m.metrics["eval_samples"]
            assert data["X"].min() >= 0.0 and data["X"].max() <= 1.0


def test_metrics_are_measured_on_the_written_model(built) -> None:
    _, models = built
    for m in models:
        with np.load(m.files_dir / "eval.npz") as data:
            x, y = data["X"], data["y"]
        session = ort.InferenceSession(str(m.files_dir / "model.onnx"))
        labels, probabilities = session.run(None, {INPUT_NAME: x})
        assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        assert (labels == probabilities.argmax(axis=1)).all()
        assert m.metrics["accuracy"] == pytest.approx(float(np.mean(labels == y)))
        assert m.metrics["accuracy"] > 0.95
        assert m.metrics["size_bytes"] == (m.files_dir / "model.onnx").stat().st_size


def test_weights_dominate_the_file(built) -> None:
    """What makes int8 quantization shrink them below 40 % and float16 halve them."""
    _, models = built
    for m in models:
        assert 4 * m.metrics["parameters"] > 0.97 * m.metrics["size_bytes"]
        assert m.metrics["parameters"] > 30_000


def test_the_same_split_for_every_model(built) -> None:
    _, models = built
    digests = {hashlib.sha256((m.files_dir / "eval.npz").read_bytes()).hexdigest() for m in models}
    assert len(digests) == 1


def test_rebuilding_gives_the_same_files(built, tmp_path: Path) -> None:
    _dest, models = built
    again = build_demo_models(tmp_path)
    for first, second in zip(models, again, strict=True):
        for a, b in zip(first.files, second.files, strict=True):
            assert a.read_bytes() == b.read_bytes(), a.name


def test_command_line(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "picsellia_tui.demo.models", str(tmp_path / "out")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "digits-mlp v1: accuracy" in proc.stdout
    assert "built 2 demo models in" in proc.stdout
    assert (tmp_path / "out" / "digits-cnn" / "v1" / "model.onnx").is_file()
