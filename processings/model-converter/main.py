"""model-converter: one entry point for every format conversion of an ONNX model.

Modelled on the converter example of the Picsellia platform: ``export_format`` picks
the target and ``input_model_file_name`` the file to convert.

- ``onnx``: ONNX Runtime's ``basic`` graph optimizations (constant folding, redundant
  node removal, standard-op fusions) saved back as ONNX, portable to any runtime;
- ``ort``: ONNX Runtime's ORT flatbuffers format with ``all`` optimizations (minus the
  x86-only layout ones) plus the operator list for a reduced ORT build;
- ``openvino``: OpenVINO IR (``.xml`` + ``.bin``) with float16 weights.

With the secret ``signing_key`` (the file named by ``SIGNING_KEY_FILE``, never in
context.json nor in the log), ``signature.json`` lists an HMAC-SHA256 of every produced file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from pathlib import Path

# The shared modules sit beside main.py in an image, in ../_lib in the source tree.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_lib"))
import conversions
import picsellia_contract as pc

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
    model_input = pc.load_input(ctx, label="ONNX", source=source, name=file_name)

    pc.log(f"converting {file_name} to {export_format}")
    produced = convert(export_format, source, ctx.outputs)
    pc.log("wrote " + ", ".join(f"{p.name} ({pc.human_bytes(p.stat().st_size)})" for p in produced))
    model_files = [p for p in produced if not p.name.endswith(".config")]

    after = model_input.measure_after(
        model_files,
        evaluating=f"the {export_format} model",
        evaluate=conversions.evaluate_openvino if export_format == "openvino" else pc.evaluate_onnx,
    )
    after.report()
    pc.carry_over(ctx)
    if signing_key:
        signature = sign(produced, signing_key, ctx.outputs / SIGNATURE_FILE)
        pc.log(f"signed {len(produced)} file(s) with the signing key: {signature.name}")
    pc.write_result(
        ctx,
        framework=export_format,
        tags=[export_format, "fp16"] if export_format == "openvino" else [export_format],
        metrics=after.metrics,
        labels=pc.labels(ctx),
    )


if __name__ == "__main__":
    pc.run(process, Path(__file__).resolve().parent)
