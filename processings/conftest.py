"""Host tests of the bundled processings: no Docker, the same contract.

Each test builds a run folder (context.json, inputs/, outputs/) from a demo model and
runs the processing's ``python main.py`` in its folder with this interpreter, exactly
as the engine's process executor does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROCESSINGS = Path(__file__).resolve().parent
REPO = PROCESSINGS.parent
LIB = PROCESSINGS / "_lib"

# Tests import the shared modules directly (in the images they sit beside main.py).
if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))
try:
    import picsellia_tui  # noqa: F401
except ModuleNotFoundError:  # not installed: use the checkout
    sys.path.insert(0, str(REPO))

from picsellia_tui.demo.models import DemoModel, build_demo_models  # noqa: E402


@dataclass(frozen=True)
class RunOutcome:
    returncode: int
    stdout: str
    stderr: str
    outputs: Path
    context: dict[str, Any]

    @property
    def result(self) -> dict[str, Any]:
        return json.loads((self.outputs / "result.json").read_text(encoding="utf-8"))

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.result.get("metrics", {}))

    def check(self) -> RunOutcome:
        """Assert the run succeeded, showing its log when it did not."""
        assert self.returncode == 0, f"exit {self.returncode}\n{self.stdout}\n{self.stderr}"
        return self


RunProcessing = Callable[..., RunOutcome]


@pytest.fixture(scope="session")
def demo_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DemoModel]:
    """The demo models, built once per test session, by model name."""
    built = build_demo_models(tmp_path_factory.mktemp("demo-models"))
    return {m.model_name: m for m in built}


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
) -> Path:
    """Lay out inputs/, outputs/ and context.json as the engine does; returns context.json."""
    run_id = uuid.uuid4().hex
    inputs = root / "inputs"
    outputs = root / "outputs"
    shutil.copytree(files_from, inputs)
    outputs.mkdir()
    definition = _definition(processing)
    context = {
        "job_id": uuid.uuid4().hex,
        "run_id": run_id,
        "attempt": 1,
        "organization_id": uuid.uuid4().hex,
        "organization": "tests",
        "processing": {
            "name": definition["name"],
            "version": definition["version"],
            "task": definition["task"],
            "output_mode": definition.get("output_mode", "new_model_version"),
        },
        "parameters": dict(parameters or {}),
        "target": {
            "type": "model_version",
            "model": model,
            "version": version,
            "framework": framework,
            "labels": labels if labels is not None else [str(d) for d in range(10)],
            "files": file_entries(inputs),
        },
        "output_version_name": f"{version}-{processing}",
        "paths": {"inputs": str(inputs), "outputs": str(outputs)},
    }
    path = root / "context.json"
    path.write_text(json.dumps(context, indent=2), encoding="utf-8")
    return path


def _definition(processing: str) -> dict[str, Any]:
    import tomllib

    with (PROCESSINGS / processing / "processing.toml").open("rb") as fh:
        return tomllib.load(fh)


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


@pytest.fixture
def run_processing(tmp_path: Path) -> RunProcessing:
    """run_processing(name, files_dir, parameters=..., env=..., framework=...) -> RunOutcome"""

    def _run(
        processing: str,
        files_from: Path,
        *,
        env: Mapping[str, str] | None = None,
        **context_fields: Any,
    ) -> RunOutcome:
        root = tmp_path / f"run-{uuid.uuid4().hex[:8]}"
        root.mkdir()
        context_path = make_run_folder(root, processing, files_from, **context_fields)
        return run_main(PROCESSINGS / processing, context_path, env)

    return _run


@pytest.fixture(scope="module")
def module_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., RunOutcome]:
    """Like run_processing, but remembers runs so several tests share one (slow) run."""
    cache: dict[str, RunOutcome] = {}

    def _run(processing: str, files_from: Path, **context_fields: Any) -> RunOutcome:
        key = json.dumps([processing, str(files_from), context_fields], sort_keys=True)
        if key not in cache:
            root = tmp_path_factory.mktemp(processing)
            context_path = make_run_folder(root, processing, files_from, **context_fields)
            cache[key] = run_main(PROCESSINGS / processing, context_path)
        return cache[key]

    return _run
