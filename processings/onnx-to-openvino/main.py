"""onnx-to-openvino: convert a version's ONNX model to OpenVINO IR.

``openvino.convert_model`` reads the ONNX graph with OpenVINO's ONNX frontend and
``openvino.save_model`` writes the IR: ``<model>.xml`` (the graph) and ``<model>.bin``
(the weights, float16 unless ``compress_to_fp16`` is off). The IR is then compiled on
OpenVINO's CPU plugin and, when the version carries an evaluation set, its accuracy is
measured there and compared with the ONNX model's under ONNX Runtime.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The shared modules sit beside main.py in an image, in ../_lib in the source tree.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_lib"))
import conversions
import picsellia_contract as pc


def process(ctx: pc.Context) -> None:
    compress = ctx.params.get_bool("compress_to_fp16")
    model_input = pc.load_input(ctx, label="ONNX", how="ONNX Runtime")
    source = model_input.source
    xml = ctx.outputs / f"{source.stem}.xml"
    pc.log(f"converting to OpenVINO IR (compress_to_fp16={compress})")
    produced = conversions.convert_to_openvino(source, xml, compress_to_fp16=compress)
    pc.log("wrote " + ", ".join(f"{p.name} ({pc.human_bytes(p.stat().st_size)})" for p in produced))

    after = model_input.measure_after(
        produced,
        evaluating="the IR on OpenVINO's CPU plugin",
        evaluate=conversions.evaluate_openvino,
    )
    tags = ["openvino", "fp16"] if compress else ["openvino"]
    pc.finish(ctx, after, framework="openvino", tags=tags)


if __name__ == "__main__":
    pc.run(process, Path(__file__).resolve().parent)
