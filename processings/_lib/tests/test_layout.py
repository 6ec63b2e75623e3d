"""The bundled processings' folders follow the rules the engine and the images rely on."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from processing_harness import PROCESSINGS

from picsellia_tui.storage.domain import ProcessingDefinition

NAMES = sorted(
    p.name for p in PROCESSINGS.iterdir() if p.is_dir() and (p / "processing.toml").is_file()
)
PUBLIC = [n for n in NAMES if not n.startswith("_")]
BASE = PROCESSINGS / "_lib" / "requirements-base.txt"
SHARED_LAYER = [
    "COPY _lib/requirements-base.txt /tmp/requirements-base.txt",
    "RUN pip install -r /tmp/requirements-base.txt",
]
PIN = re.compile(r"^[A-Za-z0-9_.\-]+==[0-9][A-Za-z0-9.\-]*$")


def load(name: str) -> ProcessingDefinition:
    with (PROCESSINGS / name / "processing.toml").open("rb") as fh:
        return ProcessingDefinition.model_validate(tomllib.load(fh))


def requirement_lines(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def instructions(dockerfile: Path) -> list[str]:
    """Dockerfile instructions, one string each (continuations joined)."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_the_seven_processings_and_the_template_are_there() -> None:
    assert set(PUBLIC) >= {
        "onnx-dynamic-quantization",
        "onnx-float16",
        "onnx-magnitude-pruning",
        "onnx-to-ort",
        "onnx-to-openvino",
        "model-evaluator",
        "model-converter",
    }
    assert "_template" in NAMES


@pytest.mark.parametrize("name", PUBLIC)
def test_definition(name: str) -> None:
    spec = load(name)
    assert spec.name == name
    assert spec.image == f"picsellia-tui/{name}:{spec.version}"
    assert spec.command == ["python", "main.py"]
    assert spec.build.context == ".." and spec.build.dockerfile == "Dockerfile"
    assert spec.constraints.frameworks, "declare the frameworks the processing accepts"
    assert spec.constraints.network is False
    assert spec.description
    assert all(p.help for p in spec.parameters)
    assert (PROCESSINGS / name / "main.py").is_file()
    assert list((PROCESSINGS / name / "tests").glob("test_*.py"))


@pytest.mark.parametrize("name", PUBLIC)
def test_dockerfile(name: str) -> None:
    steps = instructions(PROCESSINGS / name / "Dockerfile")
    assert steps[0] == "FROM python:3.11-slim"
    assert any(s.startswith("ENV PYTHONUNBUFFERED=1") for s in steps)
    assert "WORKDIR /app" in steps
    # the first pip layer is byte-for-byte the same in every image
    first_run = next(i for i, s in enumerate(steps) if s.startswith("RUN "))
    assert steps[first_run - 1 : first_run + 1] == SHARED_LAYER
    copy = next(s for s in steps if s.startswith("COPY ") and s.endswith(" /app/"))
    assert "_lib/picsellia_contract.py" in copy and f" {name}/ " in copy
    main = (PROCESSINGS / name / "main.py").read_text()
    if "import conversions" in main:
        assert "_lib/conversions.py" in copy


@pytest.mark.parametrize("name", PUBLIC)
def test_requirements_are_pinned_and_start_with_the_base(name: str) -> None:
    base = requirement_lines(BASE)
    own = requirement_lines(PROCESSINGS / name / "requirements.txt")
    assert all(PIN.match(line) for line in own), own
    assert own[: len(base)] == base


def test_dockerfile_first_layers_are_identical_everywhere() -> None:
    def prefix(name: str) -> list[str]:
        steps = instructions(PROCESSINGS / name / "Dockerfile")
        return steps[: steps.index(SHARED_LAYER[1]) + 1]

    assert len({tuple(prefix(name)) for name in PUBLIC}) == 1


def test_every_parameter_type_is_used_and_one_is_secret() -> None:
    specs = [p for name in PUBLIC for p in load(name).parameters]
    assert {p.type for p in specs} == {"str", "int", "float", "bool", "choice"}
    assert any(p.secret for p in specs)
    ranged = [p for p in specs if p.type in ("int", "float")]
    assert ranged and all(p.min is not None and p.max is not None for p in ranged)


def test_template_can_be_renamed_by_its_two_lines() -> None:
    text = (PROCESSINGS / "_template" / "processing.toml").read_text().splitlines()
    assert 'name = "my-processing"' in text
    assert 'image = "picsellia-tui/my-processing:0.1.0"' in text
    spec = load("_template")
    assert spec.build.context == "."
    main = (PROCESSINGS / "_template" / "main.py").read_text()
    assert "picsellia_contract" not in main  # self-contained: copied out of this tree


def test_dockerignore_keeps_tests_out_of_the_images() -> None:
    ignored = (PROCESSINGS / ".dockerignore").read_text().splitlines()
    assert "**/tests" in ignored and "**/__pycache__" in ignored
