"""Every bundled public processing, end to end through the engine and the Docker
executor, on both demo models, with the results checked on the host.

One session fixture builds every public image through `Engine.build_processing`
(Docker's cache makes that quick), seeds a workspace with the two demo models
(`build_demo_models`, imported with their labels, tags and metrics) and runs all the
jobs through one supervising engine at concurrency 2: first the conversions and
compressions on each `v1`, then the evaluator on `v1` and on two of the outputs (int8
ONNX, ORT). The tests then fetch each output version's files from the blob store
(sha256 -> `<data_dir>/blobs/<sha[:2]>/<sha[2:]>`), load them in their own runtime
(onnxruntime for ONNX and ORT, OpenVINO for IR), recompute accuracy on the version's
`eval.npz` and compare it, and the sizes, with what each processing reported.

The terminal summary ends with the table of metrics every processing produced.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from picsellia_tui.demo.models import LABELS, DemoModel, build_demo_models
from picsellia_tui.engine.config import Settings
from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.views import JobView, RunView, VersionView
from tests.core.helpers import make_settings
from tests.workspace_artifacts import remove_workspace_artifacts, workspace_ids_under

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
PROCESSINGS_DIR = ROOT / "processings"
MODELS = ["digits-mlp", "digits-cnn"]
CONCURRENCY = 2
RUN_TIMEOUT_S = 600
PRUNE_SPARSITY = 0.6
EXPORT_FORMATS = ["onnx", "ort", "openvino"]
# Metrics are written rounded to 6 decimals.
EPS = 1e-6
EVALUATOR_PARAMS = {"runs": 50, "edge_max_size_kb": 128, "edge_max_latency_ms": 5.0}


@dataclass(frozen=True)
class Case:
    """One job: a processing with parameters on `<model>/<target>`, whose new version
    (if any) is `<model>/<output>`."""

    key: str
    processing: str
    params: dict[str, Any]
    output: str | None  # None: updates the input version
    target: str = "v1"
    phase: int = 1


CASES = [
    Case("int8", "onnx-dynamic-quantization", {"weight_type": "QInt8"}, "v1-int8"),
    Case("fp16", "onnx-float16", {"keep_io_types": True}, "v1-fp16"),
    Case(
        "pruned",
        "onnx-magnitude-pruning",
        {"sparsity": PRUNE_SPARSITY, "scope": "global"},
        "v1-pruned",
    ),
    Case("ort", "onnx-to-ort", {"optimization_level": "all"}, "v1-ort"),
    Case("openvino", "onnx-to-openvino", {"compress_to_fp16": True}, "v1-openvino"),
    *[
        Case(
            f"convert-{fmt}",
            "model-converter",
            {"export_format": fmt, "input_model_file_name": "model.onnx"},
            f"v1-convert-{fmt}",
        )
        for fmt in EXPORT_FORMATS
    ],
    # The evaluator updates its input: it runs once the other jobs have read v1.
    Case("evaluate", "model-evaluator", EVALUATOR_PARAMS, None, phase=2),
    Case("evaluate-int8", "model-evaluator", EVALUATOR_PARAMS, None, target="v1-int8", phase=2),
    Case("evaluate-ort", "model-evaluator", EVALUATOR_PARAMS, None, target="v1-ort", phase=2),
]
CASE = {c.key: c for c in CASES}


@dataclass
class Outcome:
    case: Case
    model: str
    job: JobView
    run: RunView


@dataclass
class Results:
    settings: Settings
    demo: dict[str, DemoModel]
    built: dict[str, tuple[str, str]]  # processing -> (image, image id)
    public: list[str]
    outcomes: dict[tuple[str, str], Outcome]  # (case key, model) -> outcome
    versions: dict[str, VersionView]  # "model/version" -> final view (with files)
    # The same after phase 1, before the evaluator updated some of them.
    produced: dict[str, VersionView]
    timings: dict[str, float] = field(default_factory=dict)

    def outcome(self, key: str, model: str) -> Outcome:
        return self.outcomes[(key, model)]

    def version(self, model: str, name: str) -> VersionView:
        return self.versions[f"{model}/{name}"]

    def before_evaluation(self, model: str, name: str) -> VersionView:
        return self.produced[f"{model}/{name}"]


# ------------------------------------------------------------------------ session run


async def _run_everything(settings: Settings, demo_dir: Path) -> Results:
    timings: dict[str, float] = {}
    async with Engine(settings, supervise=True) as e:
        public = sorted(p.name for p in await e.processings() if p.visibility == "public")
        t0 = time.monotonic()
        built: dict[str, tuple[str, str]] = {}
        for name in public:
            lines: list[str] = []
            built[name] = await e.build_processing(name, on_line=lines.append)
        timings["build all public images (cached)"] = time.monotonic() - t0

        t0 = time.monotonic()
        demo = {m.model_name: m for m in build_demo_models(demo_dir)}
        for m in demo.values():
            await e.import_version(
                m.model_name,
                m.version_name,
                [m.files_dir],
                framework=m.framework,
                labels=m.labels,
                tags=m.tags,
                metrics=m.metrics,
                description=m.description,
            )
        timings["train + import the demo models"] = time.monotonic() - t0

        outcomes: dict[tuple[str, str], Outcome] = {}
        produced: dict[str, VersionView] = {}
        for phase in (1, 2):
            if phase == 2:
                produced = {v.ref: v for v in await e.versions(files=True)}
            t0 = time.monotonic()
            jobs: list[tuple[Case, str, JobView]] = []
            for case in (c for c in CASES if c.phase == phase):
                for model in MODELS:
                    job = await e.launch(
                        case.processing,
                        f"{model}/{case.target}",
                        case.params,
                        output_version_name=case.output,
                    )
                    jobs.append((case, model, job))
            for case, model, job in jobs:
                with anyio.fail_after(RUN_TIMEOUT_S):
                    run = await e.wait_run(job.runs[0].id)
                outcomes[(case.key, model)] = Outcome(case, model, await e.job(job.id), run)
            n = len(jobs)
            timings[f"phase {phase}: {n} runs at concurrency {CONCURRENCY}"] = time.monotonic() - t0
        versions = {v.ref: v for v in await e.versions(files=True)}
    return Results(settings, demo, built, public, outcomes, versions, produced, timings)


@pytest.fixture(scope="session")
def results(
    docker_client: Any, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Results]:
    tmp = tmp_path_factory.mktemp("public-processings")
    settings = make_settings(
        tmp,
        executor="docker",
        processings_dir=PROCESSINGS_DIR,
        concurrency=CONCURRENCY,
        lease_timeout_seconds=15.0,
        heartbeat_seconds=2.0,
        reconcile_seconds=5.0,
    )
    res = anyio.run(_run_everything, settings, tmp / "demo")
    request.config.pluginmanager.register(_MetricsTable(res), "picsellia-tui-metrics-table")
    yield res
    remove_workspace_artifacts(docker_client, workspace_ids_under(tmp))


# ------------------------------------------------------------------ host-side helpers


def fetch(res: Results, version: VersionView, dest: Path) -> Path:
    """The version's files, copied out of the blob store under their names."""
    root = dest / version.model / version.name
    for f in version.files:
        blob = res.settings.data_dir / "blobs" / f.sha256[:2] / f.sha256[2:]
        data = blob.read_bytes()
        assert hashlib.sha256(data).hexdigest() == f.sha256 and len(data) == f.size, f.path
        out = root / f.path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    return root


def load_eval(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(folder / "eval.npz") as z:
        x, y = z["X"], z["y"]
    assert x.dtype == np.float32 and y.dtype == np.int64 and len(x) == len(y) > 0
    return x, y


def classes(outputs: list[Any]) -> np.ndarray:
    """Predicted classes: argmax of the [n, classes] float score output."""
    for out in outputs:
        arr = np.asarray(out)
        if arr.ndim == 2 and np.issubdtype(arr.dtype, np.floating):
            return np.asarray(np.argmax(arr, axis=1), dtype=np.int64)
    raise AssertionError(f"no score output among {[np.asarray(o).shape for o in outputs]}")


def ort_accuracy(model_path: Path, x: np.ndarray, y: np.ndarray) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    meta = session.get_inputs()[0]
    dtype = np.float16 if meta.type == "tensor(float16)" else np.float32
    predicted = classes(session.run(None, {meta.name: x.astype(dtype)}))
    assert predicted.shape == y.shape
    return float(np.mean(predicted == y))


def openvino_accuracy(xml: Path, x: np.ndarray, y: np.ndarray) -> float:
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(xml), str(xml.with_suffix(".bin")))
    compiled = core.compile_model(model, "CPU")
    result = compiled([x])
    predicted = classes([result[out] for out in compiled.outputs])
    return float(np.mean(predicted == y))


def weights(model_path: Path) -> dict[str, np.ndarray]:
    """The float initializers of rank >= 2 (MatMul and Conv weights; not biases)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    out = {}
    for t in model.graph.initializer:
        arr = numpy_helper.to_array(t)
        if arr.ndim >= 2 and np.issubdtype(arr.dtype, np.floating):
            out[t.name] = arr
    return out


def sparsity(ws: dict[str, np.ndarray]) -> float:
    total = sum(w.size for w in ws.values())
    if not total:  # an int8 model has no float weights left
        return 0.0
    return sum(int(np.count_nonzero(w == 0)) for w in ws.values()) / total


def close(a: float, b: float, eps: float = EPS) -> bool:
    return abs(float(a) - float(b)) <= eps


@dataclass
class Checked:
    """An output version checked in common ways; what its test needs next."""

    version: VersionView
    parent: VersionView
    folder: Path
    parent_folder: Path
    x: np.ndarray
    y: np.ndarray
    parent_accuracy: float


def check_new_version(
    res: Results, key: str, model: str, tmp_path: Path, framework: str, tags: set[str]
) -> Checked:
    """The run succeeded and made the expected new version: lineage, framework, tags,
    labels, carried-over evaluation set; the parent's accuracy recomputed on the host
    matches `accuracy_before`."""
    o = res.outcome(key, model)
    assert o.run.status == "succeeded", o.run.error_summary
    assert o.job.executor == "docker" and (o.run.image_digest or "").startswith("sha256:")
    case = o.case
    assert case.output is not None
    v = res.before_evaluation(model, case.output)
    parent = res.before_evaluation(model, case.target)
    assert o.run.output_version_id == v.id
    assert v.origin_job_id == o.job.id and v.parent_id == parent.id
    assert v.parent == parent.ref
    assert v.framework == framework
    assert tags <= set(v.tags), v.tags
    assert v.labels == LABELS
    names = {f.path for f in v.files}
    assert {"eval.npz", "labels.json"} <= names, names
    assert "result.json" not in names
    assert v.size_bytes == sum(f.size for f in v.files)
    folder = fetch(res, v, tmp_path)
    parent_folder = fetch(res, parent, tmp_path)
    assert json.loads((folder / "labels.json").read_text()) == LABELS
    x, y = load_eval(folder)
    px, py = load_eval(parent_folder)
    assert np.array_equal(x, px) and np.array_equal(y, py)
    parent_accuracy = ort_accuracy(parent_folder / "model.onnx", x, y)
    assert close(v.metrics["accuracy_before"], parent_accuracy), (v.metrics, parent_accuracy)
    assert v.metrics["size_bytes_before"] == (parent_folder / "model.onnx").stat().st_size
    return Checked(v, parent, folder, parent_folder, x, y, parent_accuracy)


def check_accuracy(c: Checked, host_accuracy: float, max_drop: float | None = None) -> None:
    reported = c.version.metrics["accuracy"]
    assert close(reported, host_accuracy), f"reported {reported}, host {host_accuracy}"
    assert close(c.version.metrics["accuracy_delta"], host_accuracy - c.parent_accuracy, 2 * EPS)
    if max_drop is not None:
        drop = c.parent_accuracy - host_accuracy
        assert drop <= max_drop, f"accuracy {c.parent_accuracy:.4f} -> {host_accuracy:.4f}"


# --------------------------------------------------------------------------- tests


def test_every_public_processing_is_built_and_exercised(results: Results) -> None:
    assert set(results.public) == {c.processing for c in CASES}, (
        "a public processing without a case here, or a case for a missing one"
    )
    for name, (image, image_id) in results.built.items():
        assert image == f"picsellia-tui/{name}:1.0.0" and image_id.startswith("sha256:")
    for (key, model), o in results.outcomes.items():
        assert o.run.status == "succeeded", f"{key} on {model}: {o.run.error_summary}"
        assert o.run.exit_code == 0 and o.run.attempt == 1
    assert len(results.outcomes) == len(CASES) * len(MODELS)
    # The scheduler kept to the concurrency limit.
    edges = []
    for o in results.outcomes.values():
        assert o.run.started_at is not None and o.run.ended_at is not None
        edges += [(o.run.started_at, 1), (o.run.ended_at, -1)]
    running = peak = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):  # an end before a start
        running += step
        peak = max(peak, running)
    assert peak <= CONCURRENCY


@pytest.mark.parametrize("model", MODELS)
def test_dynamic_quantization(results: Results, model: str, tmp_path: Path) -> None:
    import onnx

    c = check_new_version(results, "int8", model, tmp_path, "onnx", {"int8", "quantized"})
    path = c.folder / "model.onnx"
    float_size = (c.parent_folder / "model.onnx").stat().st_size
    size = path.stat().st_size
    assert size < 0.40 * float_size, f"{size} bytes is {size / float_size:.1%} of {float_size}"
    assert c.version.metrics["size_bytes"] == size
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert ops & {"MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul"}, ops
    check_accuracy(c, ort_accuracy(path, c.x, c.y), max_drop=0.01)


@pytest.mark.parametrize("model", MODELS)
def test_float16(results: Results, model: str, tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    c = check_new_version(results, "fp16", model, tmp_path, "onnx", {"fp16"})
    path = c.folder / "model.onnx"
    ratio = path.stat().st_size / (c.parent_folder / "model.onnx").stat().st_size
    assert 0.45 <= ratio <= 0.6, ratio
    assert c.version.metrics["size_bytes"] == path.stat().st_size
    proto = onnx.load(str(path))
    ws = [t for t in proto.graph.initializer if len(t.dims) >= 2]
    assert ws and all(t.data_type == onnx.TensorProto.FLOAT16 for t in ws)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)"  # keep_io_types
    check_accuracy(c, ort_accuracy(path, c.x, c.y), max_drop=0.01)


@pytest.mark.parametrize("model", MODELS)
def test_magnitude_pruning(results: Results, model: str, tmp_path: Path) -> None:
    c = check_new_version(results, "pruned", model, tmp_path, "onnx", {"pruned"})
    path = c.folder / "model.onnx"
    pruned, dense = weights(path), weights(c.parent_folder / "model.onnx")
    assert pruned.keys() == dense.keys() and pruned
    achieved = sparsity(pruned)
    assert abs(achieved - PRUNE_SPARSITY) <= 0.02, achieved
    assert close(c.version.metrics["sparsity"], achieved)
    kept_min, zeroed_max = np.inf, 0.0
    for name, w in pruned.items():
        d = dense[name]
        assert w.shape == d.shape and w.dtype == d.dtype
        # Pruning only zeroes weights, and (global scope) the smallest ones.
        assert np.all((w == d) | (w == 0)), name
        zeroed = (w == 0) & (d != 0)
        if zeroed.any():
            zeroed_max = max(zeroed_max, float(np.abs(d[zeroed]).max()))
        if (w != 0).any():
            kept_min = min(kept_min, float(np.abs(w[w != 0]).min()))
    assert zeroed_max <= kept_min
    check_accuracy(c, ort_accuracy(path, c.x, c.y))


def check_ort_file(path: Path) -> None:
    import onnxruntime as ort

    data = path.read_bytes()
    assert data[4:8] == b"ORTM", "not an ORT-format (flatbuffers) model"
    ort.InferenceSession(str(path))  # loads as ORT format, default providers


@pytest.mark.parametrize("model", MODELS)
def test_onnx_to_ort(results: Results, model: str, tmp_path: Path) -> None:
    c = check_new_version(results, "ort", model, tmp_path, "ort", {"ort"})
    path = c.folder / "model.ort"
    check_ort_file(path)
    config = c.folder / "model.required_operators.config"
    assert "ai.onnx;" in config.read_text()
    assert c.version.metrics["size_bytes"] == path.stat().st_size
    check_accuracy(c, ort_accuracy(path, c.x, c.y), max_drop=0.0)


def check_openvino_ir(c: Checked, fp16: bool) -> float:
    import openvino as ov

    xml, bin_ = c.folder / "model.xml", c.folder / "model.bin"
    assert xml.is_file() and bin_.is_file()
    assert c.version.metrics["size_bytes"] == xml.stat().st_size + bin_.stat().st_size
    model = ov.Core().read_model(str(xml))
    constants = [
        op.get_output_element_type(0) for op in model.get_ops() if op.get_type_name() == "Constant"
    ]
    assert (ov.Type.f16 in constants) == fp16, constants
    return openvino_accuracy(xml, c.x, c.y)


@pytest.mark.parametrize("model", MODELS)
def test_onnx_to_openvino(results: Results, model: str, tmp_path: Path) -> None:
    c = check_new_version(results, "openvino", model, tmp_path, "openvino", {"openvino", "fp16"})
    check_accuracy(c, check_openvino_ir(c, fp16=True), max_drop=0.01)


@pytest.mark.parametrize("export_format", EXPORT_FORMATS)
@pytest.mark.parametrize("model", MODELS)
def test_model_converter(results: Results, model: str, export_format: str, tmp_path: Path) -> None:
    c = check_new_version(
        results, f"convert-{export_format}", model, tmp_path, export_format, {export_format}
    )
    assert c.version.metrics["size_bytes_before"] == (c.parent_folder / "model.onnx").stat().st_size
    if export_format == "openvino":
        check_accuracy(c, check_openvino_ir(c, fp16=True), max_drop=0.01)
        return
    path = c.folder / f"model.{export_format}"
    if export_format == "ort":
        check_ort_file(path)
        assert (c.folder / "model.required_operators.config").is_file()
    else:
        import onnx

        onnx.checker.check_model(onnx.load(str(path)))
    assert c.version.metrics["size_bytes"] == path.stat().st_size
    check_accuracy(c, ort_accuracy(path, c.x, c.y), max_drop=0.0)


EVALUATED = {"evaluate": ("v1", "model.onnx"), "evaluate-int8": ("v1-int8", "model.onnx"),
             "evaluate-ort": ("v1-ort", "model.ort")}  # fmt: skip


@pytest.mark.parametrize("key", list(EVALUATED))
@pytest.mark.parametrize("model", MODELS)
def test_model_evaluator(results: Results, model: str, key: str, tmp_path: Path) -> None:
    """The evaluator updates its input version (no new version), and its metrics are
    what a direct computation on the host gives."""
    o = results.outcome(key, model)
    assert o.run.status == "succeeded", o.run.error_summary
    target, model_file = EVALUATED[key]
    v = results.version(model, target)
    assert o.run.output_version_id == v.id
    assert o.job.output_version_name is None
    assert not [x for x in results.versions.values() if x.origin_job_id == o.job.id]
    folder = fetch(results, v, tmp_path)
    report = json.loads((folder / "evaluation.json").read_text())
    m = report["metrics"]

    path = folder / model_file
    x, y = load_eval(folder)
    host_accuracy = ort_accuracy(path, x, y)
    assert close(m["accuracy"], host_accuracy), (m["accuracy"], host_accuracy)
    assert m["eval_samples"] == len(y)
    assert m["size_bytes"] == path.stat().st_size
    if path.suffix == ".onnx":
        assert close(m["weight_sparsity"], sparsity(weights(path)))
    assert 0 < m["latency_p50_ms"] <= m["latency_p95_ms"]
    edge = (
        m["size_bytes"] <= EVALUATOR_PARAMS["edge_max_size_kb"] * 1024
        and m["latency_p95_ms"] <= EVALUATOR_PARAMS["edge_max_latency_ms"]
    )
    assert ("edge-ready" in report["tags"]) == edge, report["tags"]
    if key == "evaluate-int8":
        assert "int8" in report["tags"]
    matrix = report["confusion_matrix"]["rows_expected_columns_predicted"]
    assert sum(map(sum, matrix)) == len(y)
    assert close(sum(matrix[i][i] for i in range(len(matrix))) / len(y), host_accuracy)

    # Tags added and metrics merged into the input version, nothing else lost.
    before = results.before_evaluation(model, target)
    if target == "v1":
        demo = results.demo[model]
        assert set(before.tags) == set(demo.tags) and before.metrics == demo.metrics
        assert close(m["accuracy"], demo.metrics["accuracy"])  # the demo's own measure
    assert set(v.tags) == set(before.tags) | set(report["tags"])
    assert v.metrics == {**before.metrics, **m}
    assert v.framework == before.framework and v.name == before.name
    assert {f.path for f in v.files} == {f.path for f in before.files} | {"evaluation.json"}
    assert {f.path for f in v.files} >= {model_file, "eval.npz", "labels.json", "evaluation.json"}


# -------------------------------------------------------------------- metrics table


def _fmt_size(n: float) -> str:
    return f"{n / 1024:.1f}K"


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _row(res: Results, o: Outcome) -> list[str]:
    c = o.case
    params = " ".join(f"{k}={v}" for k, v in c.params.items() if k != "input_model_file_name")
    if o.run.status != "succeeded" or o.run.output_version_id is None:
        return [c.processing, params, f"{o.model}/{c.target}", o.run.status, "", "", "", ""]
    if c.output is None:  # the evaluator: its metrics are merged into the target
        v = res.version(o.model, c.target)
        m = v.metrics
        size = _fmt_size(m["size_bytes"])
        acc = _pct(m["accuracy"])
        extra = (
            f"p50 {m['latency_p50_ms']:.3f}ms p95 {m['latency_p95_ms']:.3f}ms "
            f"sparsity {_pct(m['weight_sparsity'])}"
        )
    else:
        v = res.before_evaluation(o.model, c.output)
        m = v.metrics
        size = (
            f"{_fmt_size(m['size_bytes_before'])} -> {_fmt_size(m['size_bytes'])} "
            f"({m['size_ratio']:.2f}x)"
        )
        acc = f"{_pct(m['accuracy_before'])} -> {_pct(m['accuracy'])}"
        extra = f"sparsity {_pct(m['sparsity'])}" if "sparsity" in m else ""
    seconds = f"{o.run.duration_s:.1f}s" if o.run.duration_s is not None else ""
    tags = ",".join(v.tags)
    return [c.processing, params, f"{o.model}/{c.target} -> {v.name}", size, acc, extra, tags,
            seconds]  # fmt: skip


def metrics_table(res: Results) -> list[str]:
    head = ["processing", "parameters", "run on -> version", "size", "accuracy", "other",
            "tags", "run"]  # fmt: skip
    rows = [_row(res, o) for o in res.outcomes.values()]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(s.ljust(w) for s, w in zip(cells, widths, strict=True)) + " |"

    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    out += [""] + [f"{name}: {secs:.1f}s" for name, secs in res.timings.items()]
    return out


class _MetricsTable:
    """Registered by the session fixture: prints the table at the end of the run,
    whatever the capture mode."""

    def __init__(self, res: Results) -> None:
        self.res = res

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        write: Callable[..., Any] = terminalreporter.write_sep
        write("=", "metrics produced by the public processings on the demo models")
        for text in metrics_table(self.res):
            terminalreporter.write_line(text)
