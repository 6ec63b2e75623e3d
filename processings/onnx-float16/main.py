"""onnx-float16: convert a version's ONNX model to float16 with onnxconverter-common.

Every float32 initializer and activation becomes float16, halving the weights. Two
fixes make the converter's output load and stay small on every model:

- a Cast to float32 of a value that already is float32 (skl2onnx writes one in front
  of every graph) would turn the fp16 path back to fp32 and break the graph's types:
  such no-op Casts are removed first;
- the converter stores float16 weights in ``int32_data`` (up to 3 bytes each on the
  wire): they are packed back into ``raw_data`` (2 bytes each).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

# The shared modules sit beside main.py in an image, in ../_lib in the source tree.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_lib"))
import picsellia_contract as pc

if TYPE_CHECKING:
    import onnx


def remove_noop_casts(model: onnx.ModelProto) -> int:
    """Drop Cast nodes whose input already has the target type; returns how many."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # custom domains can defeat inference: then leave the graph alone
        return 0
    graph = inferred.graph
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in [*graph.input, *graph.value_info, *graph.output]
        if v.type.HasField("tensor_type")
    }
    types.update({t.name: t.data_type for t in graph.initializer})
    graph_outputs = {o.name for o in model.graph.output}
    renamed: dict[str, str] = {}
    kept = []
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
        if node.op_type == "Cast" and node.domain in ("", "ai.onnx"):
            to = next((a.i for a in node.attribute if a.name == "to"), None)
            source = node.input[0]
            if to is not None and types.get(source) == to and node.output[0] not in graph_outputs:
                renamed[node.output[0]] = source
                continue
        kept.append(node)
    removed = len(model.graph.node) - len(kept)
    if removed:
        del model.graph.node[:]
        model.graph.node.extend(kept)
    return removed


def pack_initializers(model: onnx.ModelProto) -> None:
    """Store every initializer as raw little-endian bytes, the compact encoding."""
    from onnx import numpy_helper

    for tensor in model.graph.initializer:
        if tensor.HasField("raw_data") or tensor.data_location == 1:  # packed or external
            continue
        tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor), tensor.name))


def to_float16(model: onnx.ModelProto, *, keep_io_types: bool) -> tuple[onnx.ModelProto, int]:
    """The converted model and how many values were clipped to float16's range."""
    from onnxconverter_common import float16

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converted = float16.convert_float_to_float16(model, keep_io_types=keep_io_types)
    clamped = sum("truncated" in str(w.message) for w in caught)
    return converted, clamped


def process(ctx: pc.Context) -> None:
    import onnx

    keep_io_types = ctx.params.get_bool("keep_io_types")
    model_input = pc.load_input(ctx, label="float32")
    model = model_input.model
    removed = remove_noop_casts(model)
    if removed:
        pc.log(f"removed {removed} Cast node(s) that cast float32 to float32")
    pc.log(f"converting to float16 (keep_io_types={keep_io_types})")
    try:
        converted, clamped = to_float16(model, keep_io_types=keep_io_types)
    except Exception as exc:  # the converter raises bare exceptions on odd graphs
        raise pc.ContractError(f"float16 conversion failed: {pc.one_line(exc)}") from exc
    if clamped:
        pc.log(
            f"{clamped} value(s) beyond float16's range were clipped "
            "(tiny ones to +-1e-7, huge ones to +-65504)"
        )
    pack_initializers(converted)
    halves = sum(t.data_type == onnx.TensorProto.FLOAT16 for t in converted.graph.initializer)
    if halves == 0:
        raise pc.ContractError("nothing was converted: the model has no float32 weights")
    destination = pc.save_onnx(converted, ctx.outputs / model_input.source.name)
    pc.load_onnx(destination)
    session = pc.onnx_session(destination)  # proves ONNX Runtime accepts the new graph
    io_types = sorted({i.type for i in [*session.get_inputs(), *session.get_outputs()]})
    pc.log(f"{halves} float16 initializers; graph inputs and outputs: {', '.join(io_types)}")

    after = model_input.measure_after(destination, evaluating="the float16 model")
    pc.finish(ctx, after, framework="onnx", tags=["fp16"], metrics={"float16_initializers": halves})


if __name__ == "__main__":
    pc.run(process, Path(__file__).resolve().parent)
