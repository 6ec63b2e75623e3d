"""Every bundled processing on both demo models, as a Swarm job and with the Docker
executor, by one engine with both hosts, every run queued at once: the same
outputs on both: file names and sha256, the same metrics but those measuring time
(the evaluator's latencies and its report holding them), and, for the ORT file
whose bytes differ between any two conversions, its name and what was measured
on it.

The evaluator updates its input, so each executor's evaluator runs on that
executor's own int8 output (the same bytes, checked first). The converter gets
its secret `signing_key`: its signature.json (an HMAC of every file) is the same
only if the Swarm task read the same secret file as the container.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from picsellia_tui.demo.models import build_demo_models
from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.hosts import HostConfig
from picsellia_tui.engine.views import VersionView
from tests.core.helpers import make_settings
from tests.docker.swarm_env import ROOT, cluster_host, swarm
from tests.workspace_artifacts import remove_workspace_artifacts, workspace_ids_under

__all__ = ["swarm"]  # the session fixture, used here
pytestmark = [pytest.mark.anyio, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

MODELS = ["digits-mlp", "digits-cnn"]
EXECUTORS = ["local", "cluster"]
SIGNING_KEY = "swarm-compare-signing-key"
# A latency bound no run misses: its "edge-ready" tag then depends on size only.
EVALUATOR = {"runs": 5, "edge_max_size_kb": 128, "edge_max_latency_ms": 60000.0}
REPORT = "evaluation.json"  # the evaluator's report: holds its latencies
# Metrics that measure time (they differ between any two runs).
TIMED = ("latency", "_ms", "seconds", "duration")


@dataclass(frozen=True)
class Case:
    processing: str
    params: dict[str, Any]
    output: str | None  # the new version's name; None: updates its input
    target: str = "v1"
    # Files whose bytes differ between any two runs, even in one container: only
    # their names (and the metrics measured on them) are compared.
    varies: tuple[str, ...] = ()


CASES = [
    Case("onnx-dynamic-quantization", {"weight_type": "QInt8"}, "int8"),
    Case("onnx-float16", {"keep_io_types": True}, "fp16"),
    Case("onnx-magnitude-pruning", {"sparsity": 0.6, "scope": "global"}, "pruned"),
    # ONNX Runtime's ORT serialization is not reproducible: three conversions of
    # one model in one container gave two different model.ort files.
    Case("onnx-to-ort", {"optimization_level": "all"}, "ort", varies=("model.ort",)),
    Case("onnx-to-openvino", {"compress_to_fp16": True}, "openvino"),
    Case(
        "model-converter",
        {
            "export_format": "onnx",
            "input_model_file_name": "model.onnx",
            "signing_key": SIGNING_KEY,
        },
        "converted",
    ),
]
EVALUATE = Case("model-evaluator", EVALUATOR, None, target="int8")


@dataclass
class Compared:
    # (processing, model, executor) -> the version the run made (or updated)
    made: dict[tuple[str, str, str], VersionView]
    errors: dict[tuple[str, str, str], str]
    public: list[str]
    seconds: float


def _name(case: Case, host: str) -> str:
    return f"v1-{case.output}-{host}"


async def _run_all(settings: Any, demo_dir: Path) -> Compared:
    async with Engine(settings, supervise=True) as e:
        public = sorted(p.name for p in await e.processings() if p.visibility == "public")
        for name in public:  # both hosts are this daemon: one build serves both
            await e.build_processing(name, on_line=lambda _line: None)
        for m in build_demo_models(demo_dir):
            await e.import_version(
                m.model_name, m.version_name, [m.files_dir], framework=m.framework
            )
        t0 = time.monotonic()
        made: dict[tuple[str, str, str], VersionView] = {}
        errors: dict[tuple[str, str, str], str] = {}
        for phase in (CASES, [EVALUATE]):
            jobs = []
            for case in phase:
                for model in MODELS:
                    for host in EXECUTORS:
                        target = (
                            f"{model}/{case.target}"
                            if case.output is not None
                            else f"{model}/v1-{case.target}-{host}"
                        )
                        job = await e.launch(
                            case.processing,
                            target,
                            case.params,
                            output_version_name=_name(case, host) if case.output else None,
                            host=host,
                        )
                        jobs.append(((case.processing, model, host), job, target))
            for key, job, target in jobs:
                with anyio.fail_after(600):
                    run = await e.wait_run(job.runs[0].id)
                if run.status != "succeeded":
                    errors[key] = f"{run.status}: {run.error_summary}"
                    continue
                case_output = next(c for c in [*CASES, EVALUATE] if c.processing == key[0]).output
                ref = f"{key[1]}/v1-{case_output}-{key[2]}" if case_output else target
                made[key] = await e.version(ref)
        return Compared(made, errors, public, time.monotonic() - t0)


@pytest.fixture(scope="module")
def compared(
    docker_client: Any, swarm: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Compared]:
    tmp = tmp_path_factory.mktemp("swarm-processings")
    settings = make_settings(
        tmp,
        executor="docker",
        processings_dir=ROOT / "processings",
        hosts=[HostConfig(name="local", url="local"), cluster_host(docker_client)],
        default_host="local",
        concurrency=2,
    )
    yield anyio.run(_run_all, settings, tmp / "demo")
    remove_workspace_artifacts(docker_client, workspace_ids_under(tmp))


def _files(v: VersionView) -> dict[str, str]:
    return {f.path: f.sha256 for f in v.files}


def _steady(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if not any(t in k for t in TIMED)}


def test_every_bundled_processing_is_compared(compared: Compared) -> None:
    assert sorted({c.processing for c in [*CASES, EVALUATE]}) == compared.public


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("case", [*CASES, EVALUATE], ids=lambda c: c.processing)
def test_same_outputs_on_swarm_as_on_docker(compared: Compared, case: Case, model: str) -> None:
    keys = {h: (case.processing, model, h) for h in EXECUTORS}
    assert not [compared.errors[k] for k in keys.values() if k in compared.errors], compared.errors
    docker, swarm_v = (compared.made[keys[h]] for h in EXECUTORS)
    assert docker.framework == swarm_v.framework
    assert sorted(docker.tags) == sorted(swarm_v.tags)
    assert _steady(docker.metrics) == _steady(swarm_v.metrics)
    if case.output is not None:
        d, s = _files(docker), _files(swarm_v)
        assert d and set(d) == set(s)
        assert {k: v for k, v in d.items() if k not in case.varies} == {
            k: v for k, v in s.items() if k not in case.varies
        }
        assert swarm_v.parent == docker.parent == f"{model}/v1"
    else:
        # Its targets were the same bytes (checked as int8 above); what it added is
        # the same but for the report, which holds the latencies it measured.
        d, s = _files(docker), _files(swarm_v)
        assert REPORT in d and set(d) == set(s)
        assert {k: v for k, v in d.items() if k != REPORT} == {
            k: v for k, v in s.items() if k != REPORT
        }
    if case.processing == "model-converter":
        assert "signature.json" in _files(swarm_v)
