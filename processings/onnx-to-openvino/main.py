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

try:
    import picsellia_contract as pc
except ModuleNotFoundError as exc:  # source tree: the shared modules are in ../_lib
    if exc.name != "picsellia_contract":
        raise
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_lib"))
    import picsellia_contract as pc

import conversions  # beside main.py in the image, in ../_lib on the host


def process(ctx: pc.Context) -> None:
    compress = ctx.params.get_bool("compress_to_fp16")
    source = pc.find_model_file(ctx.inputs, ".onnx")
    model = pc.load_onnx(source)
    size_before = source.stat().st_size
    pc.log(
        f"input model: {source.name}, {pc.human_bytes(size_before)}, {len(model.graph.node)} nodes"
    )
    eval_set = pc.load_eval_set(ctx.inputs)
    accuracy_before = None
    if eval_set is None:
        pc.log("no eval.npz in the version: accuracy is not measured")
    else:
        pc.log(f"evaluating the ONNX model on {len(eval_set)} samples (ONNX Runtime)")
        accuracy_before = pc.evaluate_onnx(source, eval_set)
        pc.log(f"ONNX accuracy: {accuracy_before:.2%}")

    xml = ctx.outputs / f"{source.stem}.xml"
    pc.log(f"converting to OpenVINO IR (compress_to_fp16={compress})")
    produced = conversions.convert_to_openvino(source, xml, compress_to_fp16=compress)
    pc.log("wrote " + ", ".join(f"{p.name} ({pc.human_bytes(p.stat().st_size)})" for p in produced))

    accuracy_after = None
    if eval_set is not None:
        pc.log("evaluating the IR on OpenVINO's CPU plugin")
        accuracy_after = conversions.evaluate_openvino(xml, eval_set)
    size_after = pc.files_size(produced)
    pc.log_comparison(size_before, size_after, accuracy_before, accuracy_after)
    pc.carry_over(ctx)
    pc.write_result(
        ctx,
        framework="openvino",
        tags=["openvino", "fp16"] if compress else ["openvino"],
        metrics={
            **pc.size_metrics(size_before, size_after),
            **pc.accuracy_metrics(accuracy_before, accuracy_after),
        },
        labels=pc.labels(ctx),
    )


if __name__ == "__main__":
    pc.run(process, Path(__file__).resolve().parent)
