"""onnx-to-ort: convert a version's ONNX model to ONNX Runtime's ORT format.

ONNX Runtime loads the model, applies the graph optimizations of the chosen level and
saves the optimized graph as flatbuffers (``.ort``), the only format the minimal and
mobile builds of ONNX Runtime read. Like ``convert_onnx_models_to_ort``, the x86-only
NCHWc layout transformer stays off so the file runs on any CPU, and the operators the
model needs are written to ``<model>.required_operators.config`` for a reduced build.
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
    level = ctx.params.get_choice("optimization_level")
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
        pc.log(f"evaluating the ONNX model on {len(eval_set)} samples")
        accuracy_before = pc.evaluate_onnx(source, eval_set)
        pc.log(f"ONNX accuracy: {accuracy_before:.2%}")

    destination = ctx.outputs / f"{source.stem}.ort"
    pc.log(f"converting to ORT format with '{level}' optimizations")
    conversions.optimize_with_ort(source, destination, level=level, ort_format=True)
    config = conversions.write_ort_operators_config(
        destination, ctx.outputs / f"{source.stem}.required_operators.config"
    )
    operators = [line for line in config.read_text().splitlines() if not line.startswith("#")]
    pc.log(f"operators for a reduced ORT build written to {config.name}: {'; '.join(operators)}")

    accuracy_after = None
    if eval_set is not None:
        pc.log("evaluating the ORT model")
        accuracy_after = pc.evaluate_onnx(destination, eval_set)
    else:
        pc.onnx_session(destination)  # still prove it loads
    size_after = destination.stat().st_size
    pc.log_comparison(size_before, size_after, accuracy_before, accuracy_after)
    pc.carry_over(ctx)
    pc.write_result(
        ctx,
        framework="ort",
        tags=["ort"],
        metrics={
            **pc.size_metrics(size_before, size_after),
            **pc.accuracy_metrics(accuracy_before, accuracy_after),
        },
        labels=pc.labels(ctx),
    )


if __name__ == "__main__":
    pc.run(process, Path(__file__).resolve().parent)
