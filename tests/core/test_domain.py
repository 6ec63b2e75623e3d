"""Domain rules: parameters, state machine, processing.toml errors, compatibility."""

from __future__ import annotations

from pathlib import Path

import pytest

from picsellia_tui.engine.compat import incompatibility
from picsellia_tui.engine.definitions import load_definition, parse_definition
from picsellia_tui.engine.errors import DefinitionError
from picsellia_tui.storage.domain import (
    Constraints,
    ParamSpec,
    RunStatus,
    can_transition,
    parse_memory,
)
from picsellia_tui.storage.params import ParameterError, masked, resolve_parameters, split_secrets

SPECS = [
    ParamSpec(name="n", type="int", min=1, max=10, default=3),
    ParamSpec(name="ratio", type="float", min=0, max=0.95),
    ParamSpec(name="flag", type="bool", default=False),
    ParamSpec(name="kind", type="choice", choices=["a", "b"], required=True),
    ParamSpec(name="note", type="str"),
    ParamSpec(name="token", type="str", secret=True),
]


def test_parameters_defaults_types_and_ranges() -> None:
    got = resolve_parameters(
        SPECS, {"kind": "b", "ratio": "0.5", "flag": "yes", "token": "t0k3n-long"}
    )
    assert got == {"n": 3, "ratio": 0.5, "flag": True, "kind": "b", "token": "t0k3n-long"}
    plain, secrets = split_secrets(SPECS, got)
    assert "token" not in plain and secrets == {"token": "t0k3n-long"}
    assert masked(SPECS, got)["token"] == "••••••"


@pytest.mark.parametrize(
    ("given", "field", "reason"),
    [
        ({"kind": "a", "n": "0"}, "n", "below the minimum 1"),
        ({"kind": "a", "n": "11"}, "n", "above the maximum 10"),
        ({"kind": "a", "n": "2.5"}, "n", "is not an integer"),
        ({"kind": "a", "ratio": "nan"}, "ratio", "not a finite number"),
        ({"kind": "a", "ratio": "0.99"}, "ratio", "above the maximum 0.95"),
        ({"kind": "a", "flag": "maybe"}, "flag", "not a boolean"),
        ({"kind": "c"}, "kind", "not one of a, b"),
        ({}, "kind", "is required"),
        ({"kind": "a", "bogus": "1"}, "bogus", "unknown parameter"),
        ({"kind": "a", "note": "x\x00y"}, "note", "NUL"),
    ],
)
def test_parameter_errors_name_the_field(given: dict[str, str], field: str, reason: str) -> None:
    with pytest.raises(ParameterError) as info:
        resolve_parameters(SPECS, given)
    assert info.value.field == field
    assert reason in str(info.value)


def test_spec_coherence() -> None:
    with pytest.raises(ValueError, match="needs a non-empty 'choices'"):
        ParamSpec(name="c", type="choice")
    with pytest.raises(ValueError, match="only 'str' parameters can be secret"):
        ParamSpec(name="c", type="int", secret=True)
    with pytest.raises(ValueError, match="above the maximum"):
        ParamSpec(name="c", type="int", max=2, default=5)


def test_run_state_machine() -> None:
    assert can_transition(RunStatus.PENDING, RunStatus.RUNNING)
    assert can_transition(RunStatus.RUNNING, RunStatus.SUCCEEDED)
    assert can_transition(RunStatus.PENDING, RunStatus.KILLED)
    assert not can_transition(RunStatus.SUCCEEDED, RunStatus.RUNNING)
    assert not can_transition(RunStatus.FAILED, RunStatus.SUCCEEDED)
    assert not can_transition(RunStatus.PENDING, RunStatus.SUCCEEDED)
    assert not can_transition(RunStatus.RUNNING, RunStatus.PENDING)


GOOD = """
name = "x"
task = "MODEL_COMPRESSION"
image = "img:1"
command = ["python", "main.py"]
[[parameters]]
name = "n"
type = "int"
"""


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ("name = ", "", "not valid TOML"),
        (GOOD.replace('task = "MODEL_COMPRESSION"', 'task = "NOPE"'), "task", "Input should be"),
        (GOOD.replace('name = "x"', 'name = "Bad Name"'), "name", "lowercase"),
        (GOOD.replace('type = "int"', 'type = "complex"'), "parameters[n].type", "Input should be"),
        (GOOD + "colour = 1\n", "parameters[n].colour", "unknown key"),
        ("colour = 1\n" + GOOD, "colour", "unknown key"),
        (GOOD.replace('name = "x"\n', ""), "name", "is required"),
        ("entrypoint = []\n" + GOOD, "entrypoint", "at least 1 item"),
        (GOOD + '[constraints]\nmemory = "lots"\n', "constraints.memory", "not a size"),
    ],
)
def test_broken_processing_toml_names_file_key_reason(text: str, where: str, reason: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition(text, "procs/x/processing.toml")
    msg = str(info.value)
    assert msg.startswith("procs/x/processing.toml: ")
    assert info.value.key == where
    assert reason in msg
    assert "\n" not in msg


def test_command_is_optional_and_entrypoint_overrides() -> None:
    # Without a command the image's own ENTRYPOINT/CMD runs (issue 11).
    bare = parse_definition(GOOD.replace('command = ["python", "main.py"]\n', ""), "p.toml")
    assert bare.command == [] and bare.entrypoint is None
    empty = parse_definition(GOOD.replace('["python", "main.py"]', "[]"), "p.toml")
    assert empty.command == []
    entry = parse_definition('entrypoint = ["/bin/sh", "-c"]\n' + GOOD, "p.toml")
    assert entry.entrypoint == ["/bin/sh", "-c"]


def test_missing_definition_file(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match=r"no processing\.toml in this folder"):
        load_definition(tmp_path)


def test_compatibility_reasons() -> None:
    c = Constraints(frameworks=["onnx"], required_files=["*.onnx"])
    assert incompatibility("model_version", c, "onnx", ["sub/model.onnx"]) is None
    assert incompatibility("model_version", c, "openvino", ["m.xml"]) == (
        "needs framework onnx, version is openvino"
    )
    assert (
        incompatibility("model_version", c, "onnx", ["m.bin"]) == "needs a file matching '*.onnx'"
    )
    assert "dataset version" in (incompatibility("dataset_version", c, "onnx", []) or "")


def test_memory_sizes() -> None:
    assert parse_memory("512m") == 512 * 1024**2
    assert parse_memory("2g") == 2 * 1024**3
    assert parse_memory("1.5GiB") == int(1.5 * 1024**3)
