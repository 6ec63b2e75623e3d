"""The run contract seen from inside a bundled Processing (see docs/run-contract.md).

Each image copies this file beside its ``main.py``; on the host, ``main.py`` finds it
in ``processings/_lib``. Importing it costs only the standard library: numpy, onnx and
onnxruntime are imported by the helpers that need them.

A processing's ``main.py`` looks like::

    def process(ctx: Context) -> None:
        weight_type = ctx.params.get_choice("weight_type")  # typed, checked, toml default
        model_input = load_input(ctx, label="float")  # model, size and accuracy before
        ...
        after = model_input.measure_after(destination, evaluating="the quantized model")
        finish(ctx, after, framework="onnx", tags=["int8"], metrics={...})

    if __name__ == "__main__":
        run(process, Path(__file__).resolve().parent)

Problems the user can act on (a missing file, a model that does not load, a bad
parameter) are raised as `ContractError`: `run` prints them as one ``error:`` line on
stderr and exits with status 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import onnx
    import onnxruntime as ort

CONTEXT_ENV = "PICSELLIA_CONTEXT"
DEFAULT_CONTEXT_PATH = Path("/picsellia/context.json")
DEFINITION_FILE = "processing.toml"
EVAL_SET_FILE = "eval.npz"
LABELS_FILE = "labels.json"
RESULT_FILE = "result.json"
# Files a new version inherits from its parent, so it can be evaluated in turn.
CARRIED_OVER = (EVAL_SET_FILE, LABELS_FILE)

# Operators that only appear in a quantized graph (ONNX and ONNX Runtime contrib ones,
# including the fused forms ONNX Runtime's optimizer writes into .ort files).
QUANTIZED_OP_TYPES = frozenset(
    {
        "ConvInteger",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "DynamicQuantizeMatMul",
        "MatMulInteger",
        "MatMulIntegerToFloat",
        "QAttention",
        "QGemm",
        "QLinearConv",
        "QLinearMatMul",
        "QuantizeLinear",
    }
)

ERROR_EXIT_CODE = 2
_TRUE = {"true", "1", "yes", "on", "y"}
_FALSE = {"false", "0", "no", "off", "n"}


class ContractError(Exception):
    """A problem the user can act on; reported as one line, exit status 2."""


# --- output -------------------------------------------------------------------------


def log(message: str) -> None:
    """One progress line on stdout, flushed at once so the engine streams it live."""
    print(message, flush=True)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


# --- parameters ---------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    """The part of a `[[parameters]]` entry of processing.toml the code needs."""

    name: str
    type: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    secret: bool = False

    @classmethod
    def from_toml(cls, entry: Mapping[str, Any]) -> ParamSpec:
        return cls(
            name=str(entry["name"]),
            type=str(entry["type"]),
            default=entry.get("default"),
            min=entry.get("min"),
            max=entry.get("max"),
            choices=tuple(entry.get("choices") or ()),
            secret=bool(entry.get("secret", False)),
        )


def load_param_specs(processing_dir: Path) -> dict[str, ParamSpec]:
    path = processing_dir / DEFINITION_FILE
    if not path.is_file():
        return {}
    with path.open("rb") as fh:
        definition = tomllib.load(fh)
    return {s.name: s for s in map(ParamSpec.from_toml, definition.get("parameters", []))}


class Params:
    """Parameter values from context.json, typed and checked against processing.toml.

    A value the engine left out falls back to the toml default. Asking for a parameter
    the toml does not declare, or with the wrong type, is a bug (KeyError/TypeError).
    """

    def __init__(self, specs: Mapping[str, ParamSpec], values: Mapping[str, Any]) -> None:
        self._specs = dict(specs)
        self._values = dict(values)

    def _raw(self, name: str, expected: str) -> Any:
        spec = self._specs.get(name)
        if spec is None:
            raise KeyError(f"parameter {name!r} is not declared in {DEFINITION_FILE}")
        if spec.type != expected:
            raise TypeError(f"parameter {name!r} is a {spec.type}, not a {expected}")
        value = self._values.get(name)
        return spec.default if value is None else value

    def _spec(self, name: str) -> ParamSpec:
        return self._specs[name]

    def _missing(self, name: str) -> ContractError:
        return ContractError(f"parameter {name!r} has no value and no default")

    def get_bool(self, name: str) -> bool:
        value = self._raw(name, "bool")
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if value is None:
            raise self._missing(name)
        raise ContractError(f"parameter {name!r}: {value!r} is not a boolean")

    def get_int(self, name: str) -> int:
        value = self._raw(name, "int")
        if value is None:
            raise self._missing(name)
        try:
            if isinstance(value, bool):
                raise ValueError
            number = int(value) if isinstance(value, int) else int(str(value).strip())
        except ValueError:
            raise ContractError(f"parameter {name!r}: {value!r} is not an integer") from None
        self._check_range(name, number)
        return number

    def get_float(self, name: str) -> float:
        value = self._raw(name, "float")
        if value is None:
            raise self._missing(name)
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise ContractError(f"parameter {name!r}: {value!r} is not a number") from None
        if not math.isfinite(number):
            raise ContractError(f"parameter {name!r}: {value!r} is not a finite number")
        self._check_range(name, number)
        return number

    def get_choice(self, name: str) -> str:
        value = self._raw(name, "choice")
        if value is None:
            raise self._missing(name)
        choices = self._spec(name).choices
        if str(value) not in choices:
            raise ContractError(f"parameter {name!r}: {value!r} is not one of {', '.join(choices)}")
        return str(value)

    def get_str(self, name: str) -> str | None:
        spec = self._spec(name) if name in self._specs else None
        if spec is not None and spec.secret:
            raise TypeError(f"parameter {name!r} is secret: read it with get_secret")
        value = self._raw(name, "str")
        return None if value is None else str(value)

    def get_secret(self, name: str) -> str | None:
        """A secret parameter arrives as a file whose path is in the env var
        <NAME>_FILE (/run/secrets/<NAME>, on a tmpfs), or as the env var <NAME>
        when the processing asks for `secrets_in_env`."""
        spec = self._specs.get(name)
        if spec is None or not spec.secret:
            raise KeyError(f"parameter {name!r} is not a secret parameter of {DEFINITION_FILE}")
        path = os.environ.get(f"{name.upper()}_FILE")
        if path:
            return Path(path).read_text(encoding="utf-8") or None
        return os.environ.get(name.upper()) or None

    def public_values(self) -> dict[str, Any]:
        """Every non-secret parameter with the value the run will use (for the log)."""
        out: dict[str, Any] = {}
        for spec in self._specs.values():
            if spec.secret:
                continue
            value = self._values.get(spec.name)
            out[spec.name] = spec.default if value is None else value
        return out

    def _check_range(self, name: str, number: float) -> None:
        spec = self._spec(name)
        if spec.min is not None and number < spec.min:
            raise ContractError(f"parameter {name!r}: {number} is below the minimum {spec.min}")
        if spec.max is not None and number > spec.max:
            raise ContractError(f"parameter {name!r}: {number} is above the maximum {spec.max}")


# --- context ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    type: str
    model: str
    version: str
    framework: str
    labels: list[str]
    files: list[dict[str, Any]]


@dataclass(frozen=True)
class Context:
    job_id: str
    run_id: str
    attempt: int
    processing: str
    processing_version: str
    output_mode: str
    target: Target
    output_version_name: str
    inputs: Path
    outputs: Path
    params: Params
    raw: dict[str, Any] = field(repr=False)


def context_path() -> Path:
    return Path(os.environ.get(CONTEXT_ENV) or DEFAULT_CONTEXT_PATH)


def load_context(processing_dir: Path, path: Path | None = None) -> Context:
    """Read context.json (from ``$PICSELLIA_CONTEXT``) and this processing's specs."""
    path = path or context_path()
    if not path.is_file():
        raise ContractError(f"no context file at {path} (the engine sets ${CONTEXT_ENV})")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(f"cannot read the context file {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ContractError(f"the context file {path} does not hold a JSON object")
    paths = raw.get("paths") or {}
    try:
        inputs = Path(paths["inputs"])
        outputs = Path(paths["outputs"])
    except KeyError as exc:
        raise ContractError(f"the context file has no paths.{exc.args[0]}") from None
    if not inputs.is_dir():
        raise ContractError(f"the inputs folder {inputs} does not exist")
    outputs.mkdir(parents=True, exist_ok=True)
    target = raw.get("target") or {}
    processing = raw.get("processing") or {}
    return Context(
        job_id=str(raw.get("job_id", "")),
        run_id=str(raw.get("run_id", "")),
        attempt=int(raw.get("attempt", 1)),
        processing=str(processing.get("name", processing_dir.name)),
        processing_version=str(processing.get("version", "")),
        output_mode=str(processing.get("output_mode", "new_model_version")),
        target=Target(
            type=str(target.get("type", "model_version")),
            model=str(target.get("model", "")),
            version=str(target.get("version", "")),
            framework=str(target.get("framework", "")).lower(),
            labels=[str(x) for x in target.get("labels") or []],
            files=list(target.get("files") or []),
        ),
        output_version_name=str(raw.get("output_version_name", "")),
        inputs=inputs,
        outputs=outputs,
        params=Params(load_param_specs(processing_dir), raw.get("parameters") or {}),
        raw=raw,
    )


def run(process: Callable[[Context], None], processing_dir: Path) -> None:
    """Entry point of a processing: load the context, call `process`, report."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        ctx = load_context(processing_dir)
        t = ctx.target
        log(
            f"{ctx.processing} {ctx.processing_version} - run {ctx.run_id or '?'} "
            f"attempt {ctx.attempt}"
        )
        log(f"target: {t.model} {t.version} ({t.framework or 'unknown framework'})")
        values = ", ".join(f"{k}={v!r}" for k, v in ctx.params.public_values().items())
        log(f"parameters: {values or 'none'}")
        process(ctx)
    except ContractError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(ERROR_EXIT_CODE) from None
    log(f"done in {time.perf_counter() - started:.1f}s")


# --- input files --------------------------------------------------------------------


def list_inputs(inputs: Path) -> list[str]:
    return sorted(p.relative_to(inputs).as_posix() for p in inputs.rglob("*") if p.is_file())


def describe_inputs(inputs: Path) -> str:
    names = list_inputs(inputs)
    if not names:
        return "the version has no files"
    shown = ", ".join(names[:10])
    return f"the version has: {shown}" + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def input_file(inputs: Path, name: str) -> Path:
    """The input file at relative path `name`, or a ContractError naming what exists."""
    path = (inputs / name).resolve()
    if not path.is_relative_to(inputs.resolve()):
        raise ContractError(f"input file name {name!r} points outside the inputs folder")
    if not path.is_file():
        raise ContractError(f"input file {name!r} not found; {describe_inputs(inputs)}")
    return path


def find_model_file(inputs: Path, suffix: str) -> Path:
    """The version's model file with this suffix: ``model<suffix>`` or the only one."""
    candidates = sorted(p for p in inputs.rglob(f"*{suffix}") if p.is_file())
    if not candidates:
        raise ContractError(f"no {suffix} model file among the inputs; {describe_inputs(inputs)}")
    preferred = inputs / f"model{suffix}"
    if preferred in candidates:
        return preferred
    if len(candidates) == 1:
        return candidates[0]
    names = ", ".join(p.relative_to(inputs).as_posix() for p in candidates)
    raise ContractError(
        f"several {suffix} files ({names}): name the main one model{suffix} "
        "or pick it with a parameter"
    )


def load_onnx(path: Path) -> onnx.ModelProto:
    """Load and check an ONNX model; a broken file gives a one-line ContractError."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path))
    except (DecodeError, OSError, ValueError) as exc:
        raise ContractError(f"{path.name} is not an ONNX model: {one_line(exc)}") from exc
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ContractError(f"{path.name} is not a valid ONNX model: {one_line(exc)}") from exc
    if not model.graph.node:
        raise ContractError(f"{path.name} is not a valid ONNX model: its graph has no node")
    return model


def save_onnx(model: onnx.ModelProto, path: Path) -> Path:
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:400] or type(exc).__name__


def files_size(paths: Iterable[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def carry_over(ctx: Context) -> list[str]:
    """Copy the evaluation set and labels to the outputs, so the new version has them."""
    copied: list[str] = []
    for name in CARRIED_OVER:
        source = ctx.inputs / name
        if source.is_file():
            shutil.copyfile(source, ctx.outputs / name)
            copied.append(name)
    if copied:
        log(f"carried over {', '.join(copied)}")
    return copied


def labels(ctx: Context) -> list[str]:
    """The version's labels: from the context, else from labels.json."""
    if ctx.target.labels:
        return list(ctx.target.labels)
    path = ctx.inputs / LABELS_FILE
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ContractError(f"{LABELS_FILE} is not valid JSON: {exc}") from exc
        if isinstance(data, list):
            return [str(x) for x in data]
        raise ContractError(f"{LABELS_FILE} must hold a JSON list of label names")
    return []


# --- evaluation ---------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSet:
    """``eval.npz``: ``X`` float features, ``y`` integer label indices (into labels)."""

    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.y.shape[0])


def load_eval_set(inputs: Path) -> EvalSet | None:
    """The version's evaluation set, or None when it carries none."""
    import numpy as np

    path = inputs / EVAL_SET_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            x, y = data["X"], data["y"]
    except KeyError:
        raise ContractError(f"{EVAL_SET_FILE} must hold two arrays named 'X' and 'y'") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ContractError(f"{EVAL_SET_FILE} cannot be read: {one_line(exc)}") from exc
    if not np.issubdtype(x.dtype, np.number) or x.ndim < 2:
        raise ContractError(f"{EVAL_SET_FILE}: X must be a numeric array [samples, ...]")
    if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
        raise ContractError(f"{EVAL_SET_FILE}: y must be a 1-D integer array of label indices")
    if x.shape[0] != y.shape[0] or y.shape[0] == 0:
        raise ContractError(
            f"{EVAL_SET_FILE}: X has {x.shape[0]} samples and y {y.shape[0]}; "
            "they must match and not be empty"
        )
    return EvalSet(x=x.astype(np.float32), y=y.astype(np.int64))


_ORT_FLOAT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
}


def onnx_session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """A CPU ONNX Runtime session for an .onnx or .ort file.

    One thread by default: evaluation sets are small, and a thread pool spinning on a
    busy machine (or a container with a CPU quota) costs more than it brings.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: warnings would flood the run log
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ContractError(f"ONNX Runtime cannot load {path.name}: {one_line(exc)}") from exc


def fit_input(x: npt.NDArray[Any], shape: Iterable[Any], dtype: str) -> npt.NDArray[Any]:
    """Cast `x` to the model's input type and, if the ranks differ, reshape each sample
    to the model's static per-sample shape (e.g. [n, 64] -> [n, 1, 8, 8])."""
    import numpy as np

    dims = list(shape)[1:]
    if len(dims) != x.ndim - 1 and all(isinstance(d, int) and d > 0 for d in dims):
        if int(np.prod(dims)) != int(np.prod(x.shape[1:])):
            raise ContractError(
                f"the model expects samples of shape {dims}; the evaluation set has "
                f"{list(x.shape[1:])}"
            )
        x = x.reshape(-1, *dims)
    return np.ascontiguousarray(x, dtype=dtype)


def predicted_classes(outputs: list[npt.NDArray[Any]]) -> npt.NDArray[np.int64]:
    """Class indices from a classifier's outputs: argmax of the first 2-D score output,
    else the first 1-D integer output (a label tensor)."""
    import numpy as np

    for out in outputs:
        if out.ndim == 2 and np.issubdtype(out.dtype, np.floating):
            classes: npt.NDArray[np.int64] = np.argmax(out, axis=1).astype(np.int64)
            return classes
    for out in outputs:
        if out.ndim == 1 and np.issubdtype(out.dtype, np.integer):
            return out.astype(np.int64)
    shapes = ", ".join(f"{o.dtype}{list(o.shape)}" for o in outputs)
    raise ContractError(
        f"cannot read class predictions from the model's outputs ({shapes}): expected "
        "a [batch, classes] score tensor or a [batch] label tensor"
    )


def predict_onnx(
    session: ort.InferenceSession, x: npt.NDArray[Any], batch_size: int = 256
) -> npt.NDArray[np.int64]:
    import numpy as np

    meta = session.get_inputs()[0]
    dtype = _ORT_FLOAT_TYPES.get(meta.type)
    if dtype is None:
        raise ContractError(f"model input {meta.name!r} is {meta.type}, not a float tensor")
    x = fit_input(x, meta.shape, dtype)
    batches = []
    for start in range(0, x.shape[0], batch_size):
        outputs = session.run(None, {meta.name: x[start : start + batch_size]})
        batches.append(predicted_classes([np.asarray(o) for o in outputs]))
    return np.concatenate(batches)


def accuracy(predicted: npt.NDArray[np.int64], expected: npt.NDArray[np.int64]) -> float:
    import numpy as np

    return float(np.mean(predicted == expected))


def evaluate_onnx(path: Path, eval_set: EvalSet) -> float:
    """Accuracy of an .onnx or .ort model on the evaluation set, with ONNX Runtime."""
    return accuracy(predict_onnx(onnx_session(path), eval_set.x), eval_set.y)


# --- result -------------------------------------------------------------------------


def size_metrics(before: int, after: int) -> dict[str, float]:
    return {
        "size_bytes": after,
        "size_bytes_before": before,
        "size_ratio": round(after / before, 4) if before else 0.0,
    }


def accuracy_metrics(before: float | None, after: float | None) -> dict[str, float]:
    out: dict[str, float] = {}
    if after is not None:
        out["accuracy"] = round(after, 6)
    if before is not None:
        out["accuracy_before"] = round(before, 6)
    if before is not None and after is not None:
        out["accuracy_delta"] = round(after - before, 6)
    return out


def log_comparison(
    before_size: int, after_size: int, before: float | None, after: float | None
) -> None:
    ratio = after_size / before_size if before_size else 0.0
    log(f"size: {human_bytes(before_size)} -> {human_bytes(after_size)} ({ratio:.1%} of the input)")
    if before is not None and after is not None:
        log(f"accuracy: {before:.2%} -> {after:.2%} ({(after - before) * 100:+.2f} points)")


def write_result(
    ctx: Context,
    *,
    framework: str | None = None,
    tags: Iterable[str] = (),
    metrics: Mapping[str, float] | None = None,
    labels: list[str] | None = None,
) -> Path:
    """Write ``result.json`` in the outputs; every key is optional in the contract."""
    result: dict[str, Any] = {}
    if framework:
        result["framework"] = framework
    tag_list = list(dict.fromkeys(tags))
    if tag_list:
        result["tags"] = tag_list
    if metrics:
        clean: dict[str, float] = {}
        for key, value in metrics.items():
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(f"metric {key!r} is {value!r}: JSON needs finite numbers")
            clean[key] = int(number) if isinstance(value, int) else number
        result["metrics"] = clean
    if labels:
        result["labels"] = list(labels)
    path = ctx.outputs / RESULT_FILE
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    summary = ", ".join(f"{k}={v}" for k, v in result.get("metrics", {}).items())
    log(f"result: framework={framework or ctx.target.framework}, tags={tag_list}")
    if summary:
        log(f"metrics: {summary}")
    return path


# --- a model in, a model out --------------------------------------------------------
# The steps every processing that turns the version's ONNX model into a new version
# shares: load and measure the input, measure the output the same way, compare them,
# carry the evaluation set over and write result.json.


@dataclass(frozen=True)
class Comparison:
    """Size and accuracy of the input and of the output (accuracy None: no eval set)."""

    size_before: int
    size_after: int
    accuracy_before: float | None
    accuracy_after: float | None

    def report(self) -> None:
        """Log the size and accuracy lines (``size: A -> B``, ``accuracy: A -> B``)."""
        log_comparison(self.size_before, self.size_after, self.accuracy_before, self.accuracy_after)

    @property
    def metrics(self) -> dict[str, float]:
        """The size metrics, then the accuracy ones."""
        return {
            **size_metrics(self.size_before, self.size_after),
            **accuracy_metrics(self.accuracy_before, self.accuracy_after),
        }


@dataclass
class ModelInput:
    """The version's ONNX model, loaded, and what was measured of it before any change."""

    source: Path
    model: onnx.ModelProto
    size_before: int
    eval_set: EvalSet | None = None
    accuracy_before: float | None = None

    def measure_before(self, ctx: Context, *, label: str, how: str = "") -> ModelInput:
        """Load the evaluation set, if the version has one, and measure the input's
        accuracy on it with ONNX Runtime, logged as ``<label> accuracy: ...``; `how`
        goes in parentheses after the number of samples."""
        self.eval_set = load_eval_set(ctx.inputs)
        if self.eval_set is None:
            log("no eval.npz in the version: accuracy is not measured")
            return self
        note = f" ({how})" if how else ""
        log(f"evaluating the {label} model on {len(self.eval_set)} samples{note}")
        self.accuracy_before = evaluate_onnx(self.source, self.eval_set)
        log(f"{label} accuracy: {self.accuracy_before:.2%}")
        return self

    def measure_after(
        self,
        produced: Path | Sequence[Path],
        *,
        evaluating: str,
        evaluate: Callable[[Path, EvalSet], float] = evaluate_onnx,
    ) -> Comparison:
        """Measure the output: the total size of the `produced` model files and, when
        there is an evaluation set, the accuracy of the first one (logged as
        ``evaluating <evaluating>``)."""
        files = [produced] if isinstance(produced, Path) else list(produced)
        accuracy_after = None
        if self.eval_set is not None:
            log(f"evaluating {evaluating}")
            accuracy_after = evaluate(files[0], self.eval_set)
        return Comparison(self.size_before, files_size(files), self.accuracy_before, accuracy_after)


def open_input(ctx: Context, source: Path | None = None, *, name: str | None = None) -> ModelInput:
    """Load the input model (by default the version's ``.onnx`` file) and log its size
    and node count, under `name` if given (else the file's name)."""
    source = source or find_model_file(ctx.inputs, ".onnx")
    model = load_onnx(source)
    size = source.stat().st_size
    log(f"input model: {name or source.name}, {human_bytes(size)}, {len(model.graph.node)} nodes")
    return ModelInput(source=source, model=model, size_before=size)


def load_input(
    ctx: Context,
    *,
    label: str,
    source: Path | None = None,
    name: str | None = None,
    how: str = "",
) -> ModelInput:
    """`open_input`, then `ModelInput.measure_before`: the model, its size, the
    evaluation set and the accuracy before."""
    return open_input(ctx, source, name=name).measure_before(ctx, label=label, how=how)


def finish(
    ctx: Context,
    after: Comparison,
    *,
    framework: str,
    tags: Iterable[str],
    metrics: Mapping[str, float] | None = None,
) -> Path:
    """The end of a run that makes a new version: log the comparison, carry the
    evaluation set and labels over, write result.json with the size and accuracy
    metrics followed by the processing's own `metrics`, and the version's labels."""
    after.report()
    carry_over(ctx)
    return write_result(
        ctx,
        framework=framework,
        tags=tags,
        metrics={**after.metrics, **(metrics or {})},
        labels=labels(ctx),
    )
