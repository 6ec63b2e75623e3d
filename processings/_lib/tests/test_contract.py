"""picsellia_contract: the shared reading of the run contract, unit by unit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import picsellia_contract as pc
import pytest

SPECS = {
    "level": pc.ParamSpec("level", "choice", default="b", choices=("a", "b")),
    "runs": pc.ParamSpec("runs", "int", default=10, min=1, max=100),
    "ratio": pc.ParamSpec("ratio", "float", default=0.5, min=0.0, max=0.95),
    "flag": pc.ParamSpec("flag", "bool", default=True),
    "name": pc.ParamSpec("name", "str", default=None),
    "token": pc.ParamSpec("token", "str", secret=True),
}


def write_context(tmp_path: Path, **overrides: object) -> Path:
    (tmp_path / "in").mkdir(exist_ok=True)
    context = {
        "job_id": "j",
        "run_id": "r",
        "attempt": 2,
        "processing": {"name": "p", "version": "1.2.0", "output_mode": "update_input"},
        "parameters": {"runs": 5},
        "target": {"model": "m", "version": "v1", "framework": "ONNX", "labels": ["a", "b"]},
        "output_version_name": "v2",
        "paths": {"inputs": str(tmp_path / "in"), "outputs": str(tmp_path / "out" / "x")},
    }
    context.update(overrides)
    path = tmp_path / "context.json"
    path.write_text(json.dumps(context))
    return path


def test_context_is_read_from_the_env_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(pc.CONTEXT_ENV, str(write_context(tmp_path)))
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "processing.toml").write_text(
        '[[parameters]]\nname = "runs"\ntype = "int"\ndefault = 3\nmin = 1\n'
    )
    ctx = pc.load_context(tmp_path / "proc")
    assert (ctx.run_id, ctx.attempt, ctx.processing_version) == ("r", 2, "1.2.0")
    assert ctx.target.framework == "onnx"
    assert ctx.target.labels == ["a", "b"]
    assert ctx.outputs.is_dir()  # created
    assert ctx.params.get_int("runs") == 5


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (None, "no context file at"),
        ("{not json", "cannot read the context file"),
        ('{"paths": {"inputs": "/nonexistent-in", "outputs": "/tmp/o"}}', "does not exist"),
        ('{"paths": {"inputs": "/tmp"}}', "has no paths.outputs"),
        ("[1, 2]", "does not hold a JSON object"),
    ],
)
def test_context_problems_are_contract_errors(
    tmp_path: Path, monkeypatch, context: str | None, message: str
) -> None:
    path = tmp_path / "context.json"
    if context is not None:
        path.write_text(context)
    monkeypatch.setenv(pc.CONTEXT_ENV, str(path))
    with pytest.raises(pc.ContractError, match=message):
        pc.load_context(tmp_path)


def test_parameters_are_typed_checked_and_defaulted(tmp_path: Path, monkeypatch) -> None:
    params = pc.Params(SPECS, {"runs": "7", "flag": "off", "ratio": 0.25, "level": "a"})
    assert params.get_int("runs") == 7
    assert params.get_bool("flag") is False
    assert params.get_float("ratio") == 0.25
    assert params.get_choice("level") == "a"
    assert params.get_str("name") is None
    assert pc.Params(SPECS, {}).get_int("runs") == 10  # toml default
    assert pc.Params(SPECS, {}).get_choice("level") == "b"
    assert "token" not in params.public_values()
    monkeypatch.setenv("TOKEN", "s3cret")
    assert params.get_secret("token") == "s3cret"
    monkeypatch.setenv("TOKEN", "")
    assert params.get_secret("token") is None
    secret_file = tmp_path / "TOKEN"  # as /run/secrets/TOKEN
    secret_file.write_text("from-a-file")
    monkeypatch.setenv("TOKEN_FILE", str(secret_file))
    assert params.get_secret("token") == "from-a-file"


@pytest.mark.parametrize(
    ("values", "call", "message"),
    [
        ({"runs": 0}, "get_int", "below the minimum"),
        ({"runs": "many"}, "get_int", "is not an integer"),
        ({"runs": True}, "get_int", "is not an integer"),
        ({"ratio": 0.99}, "get_float", "above the maximum"),
        ({"ratio": "nan"}, "get_float", "not a finite number"),
        ({"flag": "perhaps"}, "get_bool", "is not a boolean"),
        ({"level": "c"}, "get_choice", "is not one of a, b"),
    ],
)
def test_bad_parameter_values_are_contract_errors(values, call, message) -> None:
    name = {"get_int": "runs", "get_float": "ratio", "get_bool": "flag", "get_choice": "level"}
    with pytest.raises(pc.ContractError, match=message):
        getattr(pc.Params(SPECS, values), call)(name[call])


def test_asking_for_undeclared_or_mistyped_parameters_is_a_bug() -> None:
    params = pc.Params(SPECS, {})
    with pytest.raises(KeyError):
        params.get_int("nope")
    with pytest.raises(TypeError):
        params.get_float("runs")
    with pytest.raises(TypeError):
        params.get_str("token")  # secrets come from the environment only


def test_find_model_file(tmp_path: Path) -> None:
    with pytest.raises(pc.ContractError, match=r"no \.onnx model file among the inputs; the"):
        pc.find_model_file(tmp_path, ".onnx")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "net.onnx").write_bytes(b"x")
    assert pc.find_model_file(tmp_path, ".onnx") == tmp_path / "sub" / "net.onnx"
    (tmp_path / "other.onnx").write_bytes(b"x")
    several = r"several \.onnx files \(other\.onnx, sub/net\.onnx\)"
    with pytest.raises(pc.ContractError, match=several):
        pc.find_model_file(tmp_path, ".onnx")
    (tmp_path / "model.onnx").write_bytes(b"x")
    assert pc.find_model_file(tmp_path, ".onnx") == tmp_path / "model.onnx"


def test_input_file_stays_inside_the_inputs(tmp_path: Path) -> None:
    (tmp_path / "a.onnx").write_bytes(b"x")
    assert pc.input_file(tmp_path, "a.onnx") == (tmp_path / "a.onnx").resolve()
    with pytest.raises(pc.ContractError, match="points outside"):
        pc.input_file(tmp_path, "../etc/passwd")
    with pytest.raises(pc.ContractError, match=r"not found; the version has: a\.onnx"):
        pc.input_file(tmp_path, "b.onnx")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not an onnx file at all", "model.onnx is not"),
        (b"", "is not a valid ONNX model"),
    ],
)
def test_broken_models_are_contract_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(pc.ContractError, match=message):
        pc.load_onnx(path)


def test_eval_set_checks(tmp_path: Path) -> None:
    assert pc.load_eval_set(tmp_path) is None
    path = tmp_path / pc.EVAL_SET_FILE
    np.savez(path, X=np.zeros((3, 4)), y=np.array([0, 1, 1]))
    eval_set = pc.load_eval_set(tmp_path)
    assert eval_set is not None and len(eval_set) == 3
    assert eval_set.x.dtype == np.float32 and eval_set.y.dtype == np.int64
    for arrays, message in [
        ({"X": np.zeros((3, 4))}, "two arrays named 'X' and 'y'"),
        ({"X": np.zeros((3, 4)), "y": np.zeros(2, np.int64)}, "must match"),
        ({"X": np.zeros((3, 4)), "y": np.zeros(3)}, "1-D integer array"),
    ]:
        np.savez(path, **arrays)
        with pytest.raises(pc.ContractError, match=message):
            pc.load_eval_set(tmp_path)
    path.write_bytes(b"not a zip")
    with pytest.raises(pc.ContractError, match="cannot be read"):
        pc.load_eval_set(tmp_path)


def test_predictions_and_input_fitting() -> None:
    scores = np.array([[0.1, 0.9], [0.8, 0.2]], np.float32)
    assert pc.predicted_classes([np.array([5, 5]), scores]).tolist() == [1, 0]
    assert pc.predicted_classes([np.array([3, 4], np.int64)]).tolist() == [3, 4]
    with pytest.raises(pc.ContractError, match="cannot read class predictions"):
        pc.predicted_classes([np.zeros((2, 2, 2), np.float32)])
    x = np.arange(2 * 64, dtype=np.float64).reshape(2, 64)
    fitted = pc.fit_input(x, ["N", 1, 8, 8], "float32")
    assert fitted.shape == (2, 1, 8, 8) and fitted.dtype == np.float32
    assert pc.fit_input(x, ["N", 64], "float16").dtype == np.float16
    with pytest.raises(pc.ContractError, match="expects samples of shape"):
        pc.fit_input(x, ["N", 1, 4, 4], "float32")


def test_write_result(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(pc.CONTEXT_ENV, str(write_context(tmp_path)))
    ctx = pc.load_context(tmp_path)
    path = pc.write_result(
        ctx,
        framework="onnx",
        tags=["int8", "int8", "small"],
        metrics={"size_bytes": 12, "accuracy": 0.5},
        labels=["a"],
    )
    assert json.loads(path.read_text()) == {
        "framework": "onnx",
        "tags": ["int8", "small"],
        "metrics": {"size_bytes": 12, "accuracy": 0.5},
        "labels": ["a"],
    }
    with pytest.raises(ValueError, match="finite"):
        pc.write_result(ctx, metrics={"accuracy": float("nan")})


def test_carry_over_and_labels(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(pc.CONTEXT_ENV, str(write_context(tmp_path, target={})))
    (tmp_path / "in" / "labels.json").write_text('["x", "y"]')
    ctx = pc.load_context(tmp_path)
    assert pc.labels(ctx) == ["x", "y"]
    assert pc.carry_over(ctx) == ["labels.json"]
    assert (ctx.outputs / "labels.json").read_text() == '["x", "y"]'


def test_metric_helpers() -> None:
    assert pc.size_metrics(200, 50) == {
        "size_bytes": 50,
        "size_bytes_before": 200,
        "size_ratio": 0.25,
    }
    assert pc.accuracy_metrics(0.9, 0.88) == {
        "accuracy": 0.88,
        "accuracy_before": 0.9,
        "accuracy_delta": pytest.approx(-0.02),
    }
    assert pc.accuracy_metrics(None, None) == {}
    assert pc.human_bytes(512) == "512 B"
    assert pc.human_bytes(204178) == "199.4 KiB"
