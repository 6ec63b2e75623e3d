"""onnx-dynamic-quantization: ONNX Runtime's dynamic int8 quantization of a version.

The weights of MatMul and Conv nodes become 8-bit integers with a scale and a zero
point; activations are quantized at run time (DynamicQuantizeLinear), so no calibration
data is needed. Size is measured before and after, and accuracy too when the version
carries an evaluation set (eval.npz).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# The shared modules sit beside main.py in an image, in ../_lib in the source tree.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_lib"))
import picsellia_contract as pc


def quantize(
    source: Path, destination: Path, *, weight_type: str, per_channel: bool, reduce_range: bool
) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        quantize_dynamic(
            model_input=str(source),
            model_output=str(destination),
            weight_type=QuantType[weight_type],
            per_channel=per_channel,
            reduce_range=reduce_range,
        )
    except Exception as exc:  # the quantizer raises plain Exceptions on unsupported graphs
        raise pc.ContractError(f"quantization failed: {pc.one_line(exc)}") from exc


def process(ctx: pc.Context) -> None:
    weight_type = ctx.params.get_choice("weight_type")
    per_channel = ctx.params.get_bool("per_channel")
    reduce_range = ctx.params.get_bool("reduce_range")

    model_input = pc.load_input(ctx, label="float")
    source = model_input.source
    destination = ctx.outputs / source.name
    pc.log(
        f"quantizing weights to {weight_type} "
        f"(per_channel={per_channel}, reduce_range={reduce_range})"
    )
    quantize(
        source,
        destination,
        weight_type=weight_type,
        per_channel=per_channel,
        reduce_range=reduce_range,
    )
    quantized = pc.load_onnx(destination)
    ops = Counter(n.op_type for n in quantized.graph.node if n.op_type in pc.QUANTIZED_OP_TYPES)
    if not ops:
        destination.unlink()
        raise pc.ContractError(
            "nothing was quantized: the model has no MatMul or Conv node with constant weights"
        )
    pc.log("quantized graph: " + ", ".join(f"{op} x{n}" for op, n in sorted(ops.items())))

    after = model_input.measure_after(destination, evaluating="the quantized model")
    pc.finish(
        ctx,
        after,
        framework="onnx",
        tags=["int8", "quantized"],
        metrics={"quantized_nodes": ops["MatMulInteger"] + ops["ConvInteger"]},
    )


if __name__ == "__main__":
    pc.run(process, Path(__file__).resolve().parent)
