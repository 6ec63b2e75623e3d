"""model-evaluator: measure a version where it stands and tag it.

Runs the version's ONNX or ORT model with ONNX Runtime on its evaluation set (eval.npz)
and times single-sample inferences. It reads the graph too, so the tags say what the
model is, not what its name claims:

- ``int8``: the graph has quantized operators (MatMulInteger, QLinearConv, ...);
- ``fp16``: most weights are stored as float16;
- ``sparse``: at least 30 % of the float weights are exactly zero;
- ``edge-ready``: the file and the p95 latency are within the parameters' limits.

The output mode is ``update_input``: metrics and tags go to the evaluated version, and
``evaluation.json`` (per-class accuracy, confusion matrix, latency details) is added to
its files. Without an evaluation set, latency is measured on zeros and accuracy skipped.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The shared modules sit beside main.py in an image, in ../_lib in the source tree.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_lib"))
import picsellia_contract as pc

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import onnxruntime as ort

REPORT_FILE = "evaluation.json"
WARMUP_RUNS = 5
SPARSE_THRESHOLD = 0.30
MODEL_SUFFIXES = {"onnx": ".onnx", "ort": ".ort"}


@dataclass
class GraphSummary:
    """What the graph holds: operator counts and weight elements by element type."""

    op_types: Counter[str] = field(default_factory=Counter)
    weight_types: Counter[str] = field(default_factory=Counter)  # numpy dtype name -> count
    float_weights: int = 0
    zero_float_weights: int = 0

    def add_weight(self, dtype: np.dtype[Any], shape: tuple[int, ...], values: Any) -> None:
        """Count one initializer of rank >= 2 (biases and scalars are not weights)."""
        import numpy as np

        if len(shape) < 2:
            return
        size = int(np.prod(shape))
        self.weight_types[dtype.name] += size
        if np.issubdtype(dtype, np.floating):
            self.float_weights += size
            if values is not None:
                self.zero_float_weights += int(np.count_nonzero(values == 0))

    @property
    def quantized(self) -> bool:
        return any(op in pc.QUANTIZED_OP_TYPES for op in self.op_types)

    @property
    def float16_share(self) -> float:
        total = sum(self.weight_types.values())
        return self.weight_types["float16"] / total if total else 0.0

    @property
    def sparsity(self) -> float:
        return self.zero_float_weights / self.float_weights if self.float_weights else 0.0


def summarize_onnx(path: Path) -> GraphSummary:
    from onnx import helper, numpy_helper

    model = pc.load_onnx(path)
    summary = GraphSummary(op_types=Counter(n.op_type for n in model.graph.node))
    for tensor in model.graph.initializer:
        dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type)
        values = numpy_helper.to_array(tensor) if len(tensor.dims) >= 2 else None
        summary.add_weight(dtype, tuple(tensor.dims), values)
    return summary


def summarize_ort(path: Path) -> GraphSummary:
    """Read an ORT-format (flatbuffers) model with the schema ONNX Runtime ships."""
    import numpy as np
    import onnxruntime.tools.ort_format_model  # noqa: F401  (puts the fbs schema on sys.path)
    import ort_flatbuffers_py.fbs as fbs
    from onnx import helper

    buffer = bytearray(path.read_bytes())
    if not fbs.InferenceSession.InferenceSession.InferenceSessionBufferHasIdentifier(buffer, 0):
        raise pc.ContractError(f"{path.name} is not an ORT format model")
    session = fbs.InferenceSession.InferenceSession.GetRootAsInferenceSession(buffer, 0)
    graph = session.Model().Graph()
    summary = GraphSummary()
    for i in range(graph.NodesLength()):
        node = graph.Nodes(i)
        if node is not None:
            summary.op_types[node.OpType().decode()] += 1
    for i in range(graph.InitializersLength()):
        tensor = graph.Initializers(i)
        shape = tuple(int(d) for d in tensor.DimsAsNumpy()) if tensor.DimsLength() else ()
        try:
            dtype = helper.tensor_dtype_to_np_dtype(tensor.DataType())
        except KeyError:  # a type numpy has no name for: not a weight we can read
            continue
        values = None
        if len(shape) >= 2 and not tensor.RawDataIsNone():
            values = np.frombuffer(tensor.RawDataAsNumpy().tobytes(), dtype=dtype)
        summary.add_weight(dtype, shape, values)
    return summary


def model_file(ctx: pc.Context) -> Path:
    suffix = MODEL_SUFFIXES.get(ctx.target.framework)
    if suffix is not None:
        return pc.find_model_file(ctx.inputs, suffix)
    for suffix in MODEL_SUFFIXES.values():  # framework not given: whatever is there
        try:
            return pc.find_model_file(ctx.inputs, suffix)
        except pc.ContractError:
            continue
    raise pc.ContractError(
        f"no .onnx or .ort model among the inputs; {pc.describe_inputs(ctx.inputs)}"
    )


def latencies_ms(
    session: ort.InferenceSession, samples: npt.NDArray[Any], runs: int
) -> npt.NDArray[np.float64]:
    """Wall time of `runs` single-sample inferences, cycling through `samples`."""
    import numpy as np

    name = session.get_inputs()[0].name
    for i in range(WARMUP_RUNS):
        session.run(None, {name: samples[i % len(samples)][None]})
    times = np.empty(runs)
    for i in range(runs):
        sample = samples[i % len(samples)][None]
        start = time.perf_counter_ns()
        session.run(None, {name: sample})
        times[i] = (time.perf_counter_ns() - start) / 1e6
    return times


def synthetic_samples(session: ort.InferenceSession) -> npt.NDArray[Any]:
    """Zeros of the model's input shape (dynamic dimensions as 1), for timing only."""
    import numpy as np

    meta = session.get_inputs()[0]
    dims = [d if isinstance(d, int) and d > 0 else 1 for d in meta.shape[1:]]
    dtype = np.float16 if meta.type == "tensor(float16)" else np.float32
    return np.zeros((1, *dims), dtype=dtype)


def confusion(
    predicted: npt.NDArray[np.int64], expected: npt.NDArray[np.int64], classes: int
) -> list[list[int]]:
    import numpy as np

    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (expected, predicted), 1)
    return [[int(v) for v in row] for row in matrix]


def process(ctx: pc.Context) -> None:
    import numpy as np

    runs = ctx.params.get_int("runs")
    threads = ctx.params.get_int("threads")
    max_size_kb = ctx.params.get_int("edge_max_size_kb")
    max_latency_ms = ctx.params.get_float("edge_max_latency_ms")

    path = model_file(ctx)
    size = path.stat().st_size
    summary = summarize_ort(path) if path.suffix == ".ort" else summarize_onnx(path)
    ops = ", ".join(f"{op} x{n}" for op, n in sorted(summary.op_types.items()))
    pc.log(f"model: {path.name}, {pc.human_bytes(size)}; operators: {ops}")
    types = ", ".join(f"{n:,} {t}" for t, n in summary.weight_types.most_common())
    pc.log(f"weights: {types or 'none'}; {summary.sparsity:.1%} of the float weights are zero")

    session = pc.onnx_session(path, threads=threads)
    eval_set = pc.load_eval_set(ctx.inputs)
    metrics: dict[str, float] = {"size_bytes": size, "weight_sparsity": round(summary.sparsity, 6)}
    report: dict[str, Any] = {"model_file": path.name, "operators": dict(summary.op_types)}
    if eval_set is None:
        pc.log("no eval.npz in the version: accuracy is not measured, latency uses zeros")
        samples = synthetic_samples(session)
    else:
        pc.log(f"predicting {len(eval_set)} samples")
        predicted = pc.predict_onnx(session, eval_set.x)
        accuracy = pc.accuracy(predicted, eval_set.y)
        pc.log(f"accuracy: {accuracy:.2%}")
        names = pc.labels(ctx)
        classes = max(len(names), int(eval_set.y.max()) + 1, int(predicted.max()) + 1)
        names = names + [str(i) for i in range(len(names), classes)]
        matrix = confusion(predicted, eval_set.y, classes)
        per_class = {
            names[i]: round(row[i] / sum(row), 6) for i, row in enumerate(matrix) if sum(row)
        }
        metrics.update(accuracy=round(accuracy, 6), eval_samples=len(eval_set))
        report.update(
            accuracy=accuracy,
            samples=len(eval_set),
            per_class_accuracy=per_class,
            confusion_matrix={"labels": names, "rows_expected_columns_predicted": matrix},
        )
        meta = session.get_inputs()[0]
        samples = pc.fit_input(
            eval_set.x, meta.shape, "float16" if meta.type == "tensor(float16)" else "float32"
        )

    pc.log(
        f"timing {runs} single-sample runs on {threads} thread(s) after {WARMUP_RUNS} warm-up runs"
    )
    times = latencies_ms(session, samples, runs)
    p50, p95 = (float(v) for v in np.percentile(times, [50, 95]))
    pc.log(f"latency: p50 {p50:.3f} ms, p95 {p95:.3f} ms, mean {times.mean():.3f} ms")
    metrics.update(latency_p50_ms=round(p50, 4), latency_p95_ms=round(p95, 4))
    report["latency_ms"] = {
        "p50": p50,
        "p95": p95,
        "mean": float(times.mean()),
        "runs": runs,
        "threads": threads,
    }

    tags = []
    if summary.quantized:
        tags.append("int8")
    if summary.float16_share > 0.5:
        tags.append("fp16")
    if summary.sparsity >= SPARSE_THRESHOLD:
        tags.append("sparse")
    small = size <= max_size_kb * 1024
    fast = p95 <= max_latency_ms
    if small and fast:
        tags.append("edge-ready")
    pc.log(
        f"edge-ready: {'yes' if small and fast else 'no'} "
        f"(size {size / 1024:.1f} KiB {'<=' if small else '>'} {max_size_kb} KiB, "
        f"p95 {p95:.3f} ms {'<=' if fast else '>'} {max_latency_ms} ms)"
    )
    report.update(tags=tags, metrics=metrics)
    (ctx.outputs / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    pc.log(f"wrote {REPORT_FILE}")
    pc.write_result(ctx, tags=tags, metrics=metrics)


if __name__ == "__main__":
    pc.run(process, Path(__file__).resolve().parent)
