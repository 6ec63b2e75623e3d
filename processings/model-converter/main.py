"""model-converter: one entry point for every format conversion of an ONNX model.

Modelled on the converter example of the Picsellia platform: ``export_format`` picks
the target and ``input_model_file_name`` the file to convert.

- ``onnx``: ONNX Runtime's ``basic`` graph optimizations (constant folding, redundant
  node removal, standard-op fusions) saved back as ONNX, portable to any runtime;
- ``ort``: ONNX Runtime's ORT flatbuffers format with ``all`` optimizations (minus the
  x86-only layout ones) plus the operator list for a reduced ORT build;
- ``openvino``: OpenVINO IR (``.xml`` + ``.bin``) with float16 weights.

With the secret ``signing_key`` (env ``SIGNING_KEY``, never in context.json nor in the
log), ``signature.json`` lists an HMAC-SHA256 of every produced file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from pathlib import Path

try:
    import picsellia_contract as pc
except ModuleNotFoundError as exc:  # source tree: the shared modules are in ../_lib
    if exc.name != "picsellia_contract":
        raise
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_lib"))
    import picsellia_contract as pc

import conversions  # beside main.py in the image, in ../_lib on the host

SIGNATURE_FILE = "signature.json"
ORT_LEVEL_FOR_ONNX = "basic"
ORT_LEVEL_FOR_ORT = "all"


def convert(export_format: str, source: Path, outputs: Path) -> list[Path]:
    """Run the conversion for `export_format`; returns the model files it wrote."""
    stem = source.stem
    if export_format == "onnx":
        destination = outputs / f"{stem}.onnx"
        conversions.optimize_with_ort(
            source, destination, level=ORT_LEVEL_FOR_ONNX, ort_format=False
        )
        pc.load_onnx(destination)
        return [destination]
    if export_format == "ort":
        destination = outputs / f"{stem}.ort"
        conversions.optimize_with_ort(source, destination, level=ORT_LEVEL_FOR_ORT, ort_format=True)
        config = conversions.write_ort_operators_config(
            destination, outputs / f"{stem}.required_operators.config"
        )
        return [destination, config]
    if export_format == "openvino":
        return conversions.convert_to_openvino(
            source, outputs / f"{stem}.xml", compress_to_fp16=True
        )
    raise pc.ContractError(f"unknown export_format {export_format!r}")


def evaluate(export_format: str, model: Path, eval_set: pc.EvalSet) -> float:
    if export_format == "openvino":
        return conversions.evaluate_openvino(model, eval_set)
    return pc.evaluate_onnx(model, eval_set)


def sign(files: list[Path], key: str, destination: Path) -> Path:
    digests = {
        path.name: hmac.new(key.encode(), path.read_bytes(), hashlib.sha256).hexdigest()
        for path in files
    }
    payload = {"algorithm": "HMAC-SHA256", "files": digests}
    destination.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return destination


def process(ctx: pc.Context) -> None:
    export_format = ctx.params.get_choice("export_format")
    file_name = ctx.params.get_str("input_model_file_name") or "model.onnx"
    signing_key = ctx.params.get_secret("signing_key")

    source = pc.input_file(ctx.inputs, file_name)
    if source.suffix.lower() != ".onnx":
        raise pc.ContractError(f"{file_name} is not an .onnx file: this converter reads ONNX")
    model = pc.load_onnx(source)
    size_before = source.stat().st_size
    pc.log(
        f"input model: {file_name}, {pc.human_bytes(size_before)}, {len(model.graph.node)} nodes"
    )
    eval_set = pc.load_eval_set(ctx.inputs)
    accuracy_before = None
    if eval_set is None:
        pc.log("no eval.npz in the version: accuracy is not measured")
    else:
        pc.log(f"evaluating the ONNX model on {len(eval_set)} samples")
        accuracy_before = pc.evaluate_onnx(source, eval_set)
        pc.log(f"ONNX accuracy: {accuracy_before:.2%}")

    pc.log(f"converting {file_name} to {export_format}")
    produced = convert(export_format, source, ctx.outputs)
    pc.log("wrote " + ", ".join(f"{p.name} ({pc.human_bytes(p.stat().st_size)})" for p in produced))
    model_files = [p for p in produced if not p.name.endswith(".config")]

    accuracy_after = None
    if eval_set is not None:
        pc.log(f"evaluating the {export_format} model")
        accuracy_after = evaluate(export_format, model_files[0], eval_set)
    size_after = pc.files_size(model_files)
    pc.log_comparison(size_before, size_after, accuracy_before, accuracy_after)
    pc.carry_over(ctx)
    if signing_key:
        signature = sign(produced, signing_key, ctx.outputs / SIGNATURE_FILE)
        pc.log(f"signed {len(produced)} file(s) with the signing key: {signature.name}")
    pc.write_result(
        ctx,
        framework=export_format,
        tags=[export_format, "fp16"] if export_format == "openvino" else [export_format],
        metrics={
            **pc.size_metrics(size_before, size_after),
            **pc.accuracy_metrics(accuracy_before, accuracy_after),
        },
        labels=pc.labels(ctx),
    )


if __name__ == "__main__":
    pc.run(process, Path(__file__).resolve().parent)
