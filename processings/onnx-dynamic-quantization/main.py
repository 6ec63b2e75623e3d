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

try:
    import picsellia_contract as pc
except ModuleNotFoundError as exc:  # source tree: the shared module is in ../_lib
    if exc.name != "picsellia_contract":
        raise
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
        pc.log(f"evaluating the float model on {len(eval_set)} samples")
        accuracy_before = pc.evaluate_onnx(source, eval_set)
        pc.log(f"float accuracy: {accuracy_before:.2%}")

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

    accuracy_after = None
    if eval_set is not None:
        pc.log("evaluating the quantized model")
        accuracy_after = pc.evaluate_onnx(destination, eval_set)
    size_after = destination.stat().st_size
    pc.log_comparison(size_before, size_after, accuracy_before, accuracy_after)
    pc.carry_over(ctx)
    pc.write_result(
        ctx,
        framework="onnx",
        tags=["int8", "quantized"],
        metrics={
            **pc.size_metrics(size_before, size_after),
            **pc.accuracy_metrics(accuracy_before, accuracy_after),
            "quantized_nodes": ops["MatMulInteger"] + ops["ConvInteger"],
        },
        labels=pc.labels(ctx),
    )


if __name__ == "__main__":
    pc.run(process, Path(__file__).resolve().parent)
