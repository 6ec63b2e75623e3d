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

# The shared modules sit beside main.py in an image, in ../_lib in the source tree.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_lib"))
import conversions
import picsellia_contract as pc


def process(ctx: pc.Context) -> None:
    level = ctx.params.get_choice("optimization_level")
    model_input = pc.load_input(ctx, label="ONNX")
    source = model_input.source
    destination = ctx.outputs / f"{source.stem}.ort"
    pc.log(f"converting to ORT format with '{level}' optimizations")
    conversions.optimize_with_ort(source, destination, level=level, ort_format=True)
    config = conversions.write_ort_operators_config(
        destination, ctx.outputs / f"{source.stem}.required_operators.config"
    )
    operators = [line for line in config.read_text().splitlines() if not line.startswith("#")]
    pc.log(f"operators for a reduced ORT build written to {config.name}: {'; '.join(operators)}")

    after = model_input.measure_after(destination, evaluating="the ORT model")
    if model_input.eval_set is None:
        pc.onnx_session(destination)  # still prove it loads
    pc.finish(ctx, after, framework="ort", tags=["ort"])


if __name__ == "__main__":
    pc.run(process, Path(__file__).resolve().parent)
