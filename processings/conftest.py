"""Fixtures of the bundled processings' host tests (no Docker, the same contract).

The helpers live in ``_lib/processing_harness.py`` (tests import them from there);
this file puts ``_lib`` on sys.path and builds the demo models once per session.
"""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

PROCESSINGS = Path(__file__).resolve().parent
LIB = PROCESSINGS / "_lib"
if str(LIB) not in sys.path:  # in the images the shared modules sit beside main.py
    sys.path.insert(0, str(LIB))
try:
    import picsellia_tui  # noqa: F401
except ModuleNotFoundError:  # not installed: use the checkout
    sys.path.insert(0, str(PROCESSINGS.parent))

from processing_harness import RunOutcome, make_run_folder, run_main  # noqa: E402

from picsellia_tui.demo.models import DemoModel, build_demo_models  # noqa: E402


@pytest.fixture(scope="session")
def demo_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DemoModel]:
    """The demo models, built once per test session, by model name."""
    built = build_demo_models(tmp_path_factory.mktemp("demo-models"))
    return {m.model_name: m for m in built}


@pytest.fixture
def run_processing(tmp_path: Path) -> Callable[..., RunOutcome]:
    """run_processing(name, files_dir, env=..., parameters=..., framework=...) -> RunOutcome"""

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
def module_runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., RunOutcome]:
    """Like run_processing, but runs each (processing, files, context) once per module,
    so several tests can check one run."""
    cache: dict[str, RunOutcome] = {}

    def _run(processing: str, files_from: Path, **context_fields: Any) -> RunOutcome:
        key = json.dumps([processing, str(files_from), context_fields], sort_keys=True)
        if key not in cache:
            root = tmp_path_factory.mktemp(processing)
            context_path = make_run_folder(root, processing, files_from, **context_fields)
            cache[key] = run_main(PROCESSINGS / processing, context_path)
        return cache[key]

    return _run


@pytest.fixture(scope="session")
def skl2onnx_model_dir(
    tmp_path_factory: pytest.TempPathFactory, demo_models: dict[str, DemoModel]
) -> Path:
    """A version exported the usual way by skl2onnx: a Cast in front of the graph and
    ``ai.onnx.ml`` operators (ArrayFeatureExtractor) behind it, with the demo eval set."""
    import warnings

    import numpy as np
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    digits = load_digits()
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit((digits.data / 16).astype(np.float32), digits.target)
    model = to_onnx(
        clf,
        initial_types=[("input", FloatTensorType([None, 64]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    folder = tmp_path_factory.mktemp("skl2onnx-mlp")
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    source = demo_models["digits-mlp"].files_dir
    for name in ("eval.npz", "labels.json"):
        shutil.copyfile(source / name, folder / name)
    return folder
