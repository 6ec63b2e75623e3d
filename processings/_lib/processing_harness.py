"""Test harness of the bundled processings: run them on the host as the engine does.

Not part of any image (the Dockerfiles copy only picsellia_contract.py and
conversions.py). processings/conftest.py puts this folder on sys.path, so tests
``from processing_harness import ...``.

A run folder holds context.json, inputs/ and outputs/; `run_main` starts the
processing's ``python main.py`` in its folder with this interpreter and
``PICSELLIA_CONTEXT`` set, exactly as the process executor does.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROCESSINGS = Path(__file__).resolve().parent.parent
DIGITS_LABELS = [str(d) for d in range(10)]


@dataclass(frozen=True)
class RunOutcome:
    returncode: int
    stdout: str
    stderr: str
    outputs: Path
    context: dict[str, Any]

    @property
    def result(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.outputs / "result.json").read_text("utf-8"))
        return data

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.result.get("metrics", {}))

    def check(self) -> RunOutcome:
        """Assert the run succeeded, showing its log when it did not."""
        assert self.returncode == 0, f"exit {self.returncode}\n{self.stdout}\n{self.stderr}"
        return self


def definition(processing: str) -> dict[str, Any]:
    with (PROCESSINGS / processing / "processing.toml").open("rb") as fh:
        return tomllib.load(fh)


def file_entries(folder: Path) -> list[dict[str, Any]]:
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        entries.append(
            {
                "path": path.relative_to(folder).as_posix(),
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
        )
    return entries


def make_run_folder(
    root: Path,
    processing: str,
    files_from: Path,
    *,
    parameters: Mapping[str, Any] | None = None,
    framework: str = "onnx",
    labels: list[str] | None = None,
    model: str = "digits",
    version: str = "v1",
    inputs_dir: Path | None = None,
    outputs_dir: Path | None = None,
) -> Path:
    """Lay out the inputs, outputs and context.json of one run; returns context.json.

    `inputs_dir`/`outputs_dir` are the paths written into the context (e.g. the ones
    inside a container); by default the run folder's own.
    """
    inputs = root / "inputs"
    outputs = root / "outputs"
    shutil.copytree(files_from, inputs)
    outputs.mkdir()
    spec = definition(processing)
    context = {
        "job_id": uuid.uuid4().hex,
        "run_id": uuid.uuid4().hex,
        "attempt": 1,
        "organization_id": uuid.uuid4().hex,
        "organization": "tests",
        "processing": {
            "name": spec["name"],
            "version": spec["version"],
            "task": spec["task"],
            "output_mode": spec.get("output_mode", "new_model_version"),
        },
        "parameters": dict(parameters or {}),
        "target": {
            "type": "model_version",
            "model": model,
            "version": version,
            "framework": framework,
            "labels": DIGITS_LABELS if labels is None else labels,
            "files": file_entries(inputs),
        },
        "output_version_name": f"{version}-{processing}",
        "paths": {
            "inputs": str(inputs_dir or inputs),
            "outputs": str(outputs_dir or outputs),
        },
    }
    path = root / "context.json"
    path.write_text(json.dumps(context, indent=2), encoding="utf-8")
    return path


def run_main(
    processing_dir: Path, context_path: Path, env: Mapping[str, str] | None = None
) -> RunOutcome:
    """``python main.py`` in the processing folder, like the process executor."""
    context = json.loads(context_path.read_text(encoding="utf-8"))
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "PICSELLIA"))}
    run_env.update(
        PICSELLIA_CONTEXT=str(context_path),
        job_id=context["job_id"],
        run_id=context["run_id"],
        organization_id=context["organization_id"],
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    run_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "main.py"],
        cwd=processing_dir,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return RunOutcome(
        returncode=proc.returncode,
        stdout=proc.stdout,
        stderr=proc.stderr,
        outputs=Path(context["paths"]["outputs"]),
        context=context,
    )


def load_main(processing: str) -> Any:
    """Import a processing's main.py as a module, for unit tests of its functions."""
    path = PROCESSINGS / processing / "main.py"
    spec = importlib.util.spec_from_file_location(f"main_{processing.replace('-', '_')}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# --- independent measurements: what tests compare the processings' claims with ------


def direct_accuracy(model_path: Path, eval_npz: Path) -> float:
    """Accuracy of an .onnx/.ort model's ``label`` output (the demo models' interface),
    computed with ONNX Runtime, independently of the processings' code."""
    import numpy as np
    import onnxruntime as ort

    with np.load(eval_npz) as data:
        x, y = data["X"], data["y"]
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    meta = session.get_inputs()[0]
    x = x.astype(np.float16 if meta.type == "tensor(float16)" else np.float32)
    (labels,) = session.run(["label"], {meta.name: x})
    return float(np.mean(labels == y))


def openvino_accuracy(xml: Path, eval_npz: Path) -> float:
    """Same, for an OpenVINO IR compiled on the CPU plugin."""
    import numpy as np
    import openvino as ov

    with np.load(eval_npz) as data:
        x, y = data["X"], data["y"]
    compiled = ov.Core().compile_model(str(xml), "CPU")
    labels = compiled(x)[compiled.output("label")]
    return float(np.mean(labels == y))
