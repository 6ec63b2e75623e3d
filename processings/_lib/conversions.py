"""Format conversions shared by onnx-to-ort, onnx-to-openvino and model-converter.

Copied beside main.py in the images that convert (see their Dockerfiles). onnxruntime
and openvino are imported by the functions that need them, so an image only needs the
runtime of the formats it produces.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from picsellia_contract import (
    ContractError,
    EvalSet,
    accuracy,
    fit_input,
    one_line,
    predicted_classes,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# Names of the ONNX Runtime tools (convert_onnx_models_to_ort) -> GraphOptimizationLevel
ORT_OPTIMIZATION_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "layout": "ORT_ENABLE_LAYOUT",
    "all": "ORT_ENABLE_ALL",
}
# Like the ORT tool: the NCHWc layout transformer makes a model that only runs on x86
# CPUs with the right instruction set, so it stays off to keep the output portable.
_NON_PORTABLE_OPTIMIZERS = ["NchwcTransformer"]


def optimize_with_ort(source: Path, destination: Path, *, level: str, ort_format: bool) -> Path:
    """Let ONNX Runtime optimize `source` at `level` and save the result, in ORT format
    (flatbuffers, for the minimal and mobile runtimes) or as ONNX."""
    import onnxruntime as ort

    if level not in ORT_OPTIMIZATION_LEVELS:
        raise ContractError(
            f"unknown optimization level {level!r}; use one of {', '.join(ORT_OPTIMIZATION_LEVELS)}"
        )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, ORT_OPTIMIZATION_LEVELS[level]
    )
    options.optimized_model_filepath = str(destination)
    if ort_format:
        options.add_session_config_entry("session.save_model_format", "ORT")
    destination.parent.mkdir(parents=True, exist_ok=True)
    disabled = _NON_PORTABLE_OPTIMIZERS if level in ("layout", "all") else None
    try:
        ort.InferenceSession(
            str(source),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=disabled,
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ContractError(f"ONNX Runtime cannot load {source.name}: {one_line(exc)}") from exc
    if not destination.is_file():
        raise ContractError(f"ONNX Runtime did not write {destination.name}")
    return destination


def write_ort_operators_config(ort_model: Path, destination: Path) -> Path:
    """The operators the ORT model needs, in the format of ONNX Runtime's reduced
    builds (``build.sh --include_ops_by_config``), like convert_onnx_models_to_ort."""
    import logging

    from onnxruntime.tools.ort_format_model import create_config_from_models

    # The tool logs "Created config in <absolute path>" at INFO: the caller logs instead.
    logging.getLogger("ort_format_model.utils").setLevel(logging.WARNING)
    create_config_from_models([ort_model], destination, enable_type_reduction=False)
    # The tool writes the model's absolute path in a comment: keep only its name.
    lines = destination.read_text(encoding="utf-8").splitlines()
    lines = [f"# - {ort_model.name}" if line.startswith("# - ") else line for line in lines]
    destination.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return destination


def convert_to_openvino(source: Path, xml: Path, *, compress_to_fp16: bool) -> list[Path]:
    """Convert an ONNX model to OpenVINO IR: returns [model.xml, model.bin]."""
    import openvino as ov

    try:
        model = ov.convert_model(str(source))
    except Exception as exc:  # OpConversionFailure and friends
        raise ContractError(
            f"OpenVINO cannot convert {source.name}: {_openvino_reason(exc)}"
        ) from exc
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(xml), compress_to_fp16=compress_to_fp16)
    produced = [xml, xml.with_suffix(".bin")]
    missing = [p.name for p in produced if not p.is_file()]
    if missing:
        raise ContractError(f"OpenVINO did not write {', '.join(missing)}")
    return produced


def _openvino_reason(exc: BaseException) -> str:
    """OpenVINO's messages are long reports; keep the summary when there is one."""
    text = " ".join(str(exc).split())
    if "Summary:" in text:
        text = text.split("Summary:", 1)[1].strip(" -")
    return text[:400] or type(exc).__name__


def predict_openvino(
    xml: Path, x: npt.NDArray[Any], batch_size: int = 256
) -> npt.NDArray[np.int64]:
    import numpy as np
    import openvino as ov

    try:
        compiled = ov.Core().compile_model(str(xml), "CPU")
    except Exception as exc:
        raise ContractError(f"OpenVINO cannot load {xml.name}: {one_line(exc)}") from exc
    port = compiled.inputs[0]
    shape = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
    dtype = port.get_element_type().to_dtype()
    x = fit_input(x, shape, str(np.dtype(dtype)))
    request = compiled.create_infer_request()
    batches = []
    for start in range(0, x.shape[0], batch_size):
        result = request.infer({port: x[start : start + batch_size]})
        outputs = [np.asarray(result[out]) for out in compiled.outputs]
        batches.append(predicted_classes(outputs))
    return np.concatenate(batches)


def evaluate_openvino(xml: Path, eval_set: EvalSet) -> float:
    """Accuracy of an OpenVINO IR model on the evaluation set, on the CPU plugin."""
    return accuracy(predict_openvino(xml, eval_set.x), eval_set.y)
