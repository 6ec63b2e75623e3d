"""Hostile input, in process: property-based tests (hypothesis) over processing.toml,
parameter values, version and model names; hand-made output archives that try to
escape; names with shell metacharacters and path separators. Each input is either
refused with one clear line or neutralized; none crashes or corrupts the database."""

from __future__ import annotations

import io
import os
import re
import tarfile
from pathlib import Path
from typing import Any

import anyio
import pytest
import tomli_w
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from picsellia_tui.engine import catalog
from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.definitions import parse_definition
from picsellia_tui.engine.errors import DefinitionError, EngineError, InvalidInput, NotFound
from picsellia_tui.engine.executors.archives import safe_extract
from picsellia_tui.engine.executors.base import OutputRejected
from picsellia_tui.storage.domain import NAME_RE, VERSION_NAME_RE, ParamSpec
from picsellia_tui.storage.params import ParameterError, resolve_parameters
from tests.reliability.helpers import (
    Tally,
    cli_env,
    config_file,
    expect_refusal,
    expect_refusal_async,
    integrity,
    make_settings,
    message_problem,
    model_file,
    query,
    run_cli,
)

AREA = "hostile input"
HYP = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Characters a terminal, a shell or a path would take for something else.
NASTY = [
    "/", "\\", "..", "../", "~", "$", "`", "$(id)", ";", "&", "|", ">", "<", "*", "?", "'",
    '"', " ", "\t", "\n", "\r", "\x00", "\x1b]0;t\x07", "\x1b[2J", "\x07", "\u202e", "\x9b",
    "\ud800", "é", "%s", "{}", "-rf", "--help", "\x7f", "",
]  # fmt: skip
nasty_text = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(NASTY) | st.text(max_size=5), max_size=8).map("".join),
)
CONTROL_RX = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

VALID_TOML: dict[str, Any] = {
    "name": "hostile",
    "version": "1.0.0",
    "description": "a processing",
    "task": "MODEL_COMPRESSION",
    "image": "picsellia-tui/hostile:1.0.0",
    "command": ["python", "main.py"],
    "parameters": [
        {"name": "n", "type": "int", "default": 3, "min": 0, "max": 10},
        {"name": "mode", "type": "choice", "choices": ["a", "b"], "default": "a"},
        {"name": "token", "type": "str", "secret": True},
    ],
    "constraints": {"frameworks": ["onnx"], "memory": "1g"},
    "build": {"context": ".", "dockerfile": "Dockerfile"},
}


def _accepted_definition_is_safe(d: Any) -> None:
    """What an accepted definition may hold: nothing that reaches further than its
    folder, a shell or a terminal."""
    assert NAME_RE.match(d.name)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*", d.image)
    for text in (d.version, d.description, *(p.help for p in d.parameters)):
        assert not CONTROL_RX.search(text), f"control characters accepted: {text!r}"
    for p in d.parameters:
        for c in p.choices or []:
            assert not CONTROL_RX.search(c) and "\n" not in c, f"choice {c!r} accepted"
    for arg in d.command:
        assert "\x00" not in arg, "NUL in the command accepted"
    for rel in (d.build.context, d.build.dockerfile):
        # ".." is checked against the folder when a private processing is created/built
        assert not Path(rel).is_absolute() and not rel.startswith("~"), f"build path {rel!r}"


# --------------------------------------------------------------------- processing.toml


@HYP
@given(text=st.text(max_size=400))
def test_processing_toml_random_text(tally: Tally, text: str) -> None:
    try:
        d = parse_definition(text, "x/processing.toml")
    except DefinitionError as exc:
        problem = message_problem(str(exc))
        tally.bad(AREA, problem is None, f"toml text: {problem}: {str(exc)[:100]!r}")
        assert problem is None, str(exc)
        return
    tally.bad(AREA, True)
    _accepted_definition_is_safe(d)


toml_value = st.recursive(
    st.one_of(
        nasty_text,
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
PATHS = [
    ("name",), ("version",), ("description",), ("task",), ("image",), ("command",),
    ("command", 0), ("output_mode",), ("target_type",), ("parameters",), ("parameters", 0),
    ("parameters", 0, "name"), ("parameters", 0, "type"), ("parameters", 0, "default"),
    ("parameters", 0, "min"), ("parameters", 0, "max"), ("parameters", 1, "choices"),
    ("parameters", 1, "choices", 0), ("parameters", 2, "help"), ("parameters", 2, "secret"),
    ("constraints", "memory"), ("constraints", "cpu"), ("constraints", "frameworks"),
    ("build", "context"), ("build", "dockerfile"), ("unknown",), ("constraints", "unknown"),
]  # fmt: skip


def _mutate(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    import copy

    out = copy.deepcopy(doc)
    node: Any = out
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return out


@HYP
@given(
    muts=st.lists(st.tuples(st.sampled_from(PATHS), toml_value), min_size=1, max_size=3),
)
def test_processing_toml_mutated_fields(tally: Tally, muts: list[tuple[Any, Any]]) -> None:
    doc = VALID_TOML
    for path, value in muts:
        try:
            doc = _mutate(doc, path, value)
        except (TypeError, KeyError, IndexError):
            continue
    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):
        assume(False)
        return
    try:
        d = parse_definition(text, "p/processing.toml")
    except DefinitionError as exc:
        problem = message_problem(str(exc))
        tally.bad(AREA, problem is None, f"toml fields: {problem}: {str(exc)[:100]!r}")
        assert problem is None, str(exc)
        return
    tally.bad(AREA, True)  # accepted: it must be harmless
    _accepted_definition_is_safe(d)


@pytest.mark.parametrize(
    "path,value",
    [
        (("name",), "../../etc"),
        (("name",), "a;rm -rf ~"),
        (("name",), "$(id)"),
        (("name",), "a/b"),
        (("name",), "x\x1b]0;pwned\x07"),
        (("image",), "img; rm -rf /"),
        (("image",), "img\nFROM evil"),
        (("description",), "hi \x1b]0;pwned-title\x07 \x1b[2J"),
        (("version",), "1.0\x1b[31m"),
        (("parameters", 2, "help"), "\x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\"),
        (("parameters", 1, "choices"), ["a", "b\x1b[2J"]),
        (("command",), ["python", "main.py\x00--evil"]),
        (("build", "context"), "/home"),
        (("build", "context"), "~/.ssh"),
        (("build", "dockerfile"), "/etc/Dockerfile"),
        (("constraints", "memory"), "1g; rm"),
        (("constraints", "memory"), "9" * 5000 + "x"),
        (("unknown\x1b]0;pwned\x07",), 1),
        (("parameters", 0, "name"), "\x1b[2J" * 100),
        (("constraints", "cpu"), -1),
        (("parameters", 0, "name"), "a-b;c"),
        # issue 16 item 11: absurd sizes, NaN bounds, a huge or bidi-spoofed text
        (("constraints", "memory"), "999999999999999t"),
        (("constraints", "memory"), "1"),
        (("constraints", "memory"), "9" * 400),
        (("parameters", 0, "min"), float("nan")),
        (("parameters", 0, "max"), float("inf")),
        (("description",), "x" * 20_000_000),
        (("description",), "harmless \u202etxt.exe"),
        (("parameters", 2, "help"), "h" * 100_000),
        # issue 16 item 12: a secret would replace the environment the process needs
        (("parameters", 2, "name"), "path"),
        (("parameters", 2, "name"), "ld_preload"),
        (("parameters", 2, "name"), "pythonpath"),
        (("parameters", 2, "name"), "home"),
        (("parameters", 2, "name"), "picsellia_context"),
        # issue 16 item 4: a secret's default is printed by `processings show`
        (("parameters", 2, "default"), "a-default-secret"),
    ],
    ids=lambda v: repr(v)[:40] if not isinstance(v, tuple) else ".".join(map(str, v)),
)
def test_processing_toml_named_hostile_fields(tally: Tally, path: Any, value: Any) -> None:
    text = tomli_w.dumps(_mutate(VALID_TOML, path, value))
    expect_refusal(
        tally,
        AREA,
        lambda: parse_definition(text, "p/processing.toml"),
        DefinitionError,
        f"processing.toml {'.'.join(map(str, path))}={value!r}",
    )


@pytest.mark.parametrize(
    "build",
    [{"context": "../.."}, {"context": ".."}, {"context": ".", "dockerfile": "../Dockerfile"}],
)
def test_private_processing_build_paths_stay_in_its_folder(
    tmp_path: Path, tally: Tally, build: dict[str, str]
) -> None:
    """The build context is uploaded to the Docker host: a private processing may not
    point it at its parents (a home directory, ~/.ssh)."""
    from picsellia_tui.engine.workspace import Workspace

    folder = tmp_path / "home" / "ana" / "procs" / "mine"
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text("FROM python:3.11-slim\n")
    doc = {**VALID_TOML, "name": "mine", "build": build}
    (folder / "processing.toml").write_text(tomli_w.dumps(doc))
    ws = Workspace(make_settings(tmp_path))
    try:
        expect_refusal(
            tally,
            AREA,
            lambda: catalog.create_private(ws, folder=folder),
            InvalidInput,
            f"private processing build {build}",
        )
        with ws.db.read() as s:
            from sqlmodel import select

            from picsellia_tui.storage.models import Processing

            assert s.exec(select(Processing).where(Processing.name == "mine")).first() is None
    finally:
        ws.close()


# -------------------------------------------------------------------- parameter values

param_specs = st.one_of(
    st.builds(
        ParamSpec,
        name=st.just("p"),
        type=st.sampled_from(["int", "float"]),
        min=st.none() | st.integers(-100, 0),
        max=st.none() | st.integers(1, 100),
        required=st.booleans(),
    ),
    st.builds(ParamSpec, name=st.just("p"), type=st.just("bool"), required=st.booleans()),
    st.builds(
        ParamSpec,
        name=st.just("p"),
        type=st.just("str"),
        required=st.booleans(),
        secret=st.booleans(),
    ),
    st.builds(
        ParamSpec,
        name=st.just("p"),
        type=st.just("choice"),
        choices=st.lists(
            st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=5),
            min_size=1,
            max_size=4,
            unique=True,
        ),
    ),
)
hostile_values = st.one_of(
    nasty_text,
    st.text(min_size=4000, max_size=5000),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.binary(max_size=10),
    st.sampled_from(["1e400", "-inf", "nan", "0x10", "1_000", "١٢٣", " 7 ", "true", "9" * 5000]),
)


@HYP
@given(spec=param_specs, value=hostile_values)
def test_parameter_values(tally: Tally, spec: ParamSpec, value: Any) -> None:
    try:
        out = resolve_parameters([spec], {"p": value})
    except ParameterError as exc:
        problem = message_problem(str(exc))
        tally.bad(AREA, problem is None, f"parameter {spec.type}: {problem}: {str(exc)[:100]!r}")
        assert problem is None, f"{problem}: {str(exc)[:300]!r}"
        assert exc.field == "p"
        return
    tally.bad(AREA, True)  # accepted: the value must now fit its spec exactly
    if "p" not in out:
        assert not spec.required
        return
    v = out["p"]
    if spec.type == "int":
        assert type(v) is int
    elif spec.type == "float":
        assert type(v) is float and v == v and abs(v) != float("inf")
    elif spec.type == "bool":
        assert type(v) is bool
    else:
        assert isinstance(v, str) and "\x00" not in v and len(v) <= 4096
        assert not CONTROL_RX.search(v), f"control characters accepted in a str value: {v!r}"
        if spec.type == "choice":
            assert v in (spec.choices or [])
    if spec.type in ("int", "float"):
        assert spec.min is None or v >= spec.min
        assert spec.max is None or v <= spec.max


@pytest.mark.parametrize(
    "ptype,value",
    [
        ("float", 10**400),
        ("int", "9" * 5000),
        ("int", float("inf")),
        ("float", "nan"),
        ("bool", "x" * 10000),
        ("str", "title \x1b]0;pwned\x07"),
        ("str", "clear \x1b[2J"),
        ("str", "bell \x07"),
        ("str", "lone \ud800 surrogate"),
        ("str", "nul \x00"),
        ("str", "y" * 5000),
        ("str", ["a", "list"]),
        ("choice", "z" * 10000),
    ],
)
def test_parameter_named_hostile_values(tally: Tally, ptype: str, value: Any) -> None:
    spec = ParamSpec(name="p", type=ptype, choices=["a", "b"] if ptype == "choice" else None)
    expect_refusal(
        tally,
        AREA,
        lambda: resolve_parameters([spec], {"p": value}),
        ParameterError,
        f"parameter {ptype}={str(value)[:30]!r}",
    )


def test_unknown_and_missing_parameters_are_refused(tally: Tally) -> None:
    specs = [ParamSpec(name="a", type="int", required=True)]
    expect_refusal(tally, AREA, lambda: resolve_parameters(specs, {}), ParameterError, "missing")
    expect_refusal(
        tally,
        AREA,
        lambda: resolve_parameters(specs, {"a": 1, "b;rm": 2}),
        ParameterError,
        "unknown parameter",
    )
    expect_refusal(
        tally,
        AREA,
        lambda: resolve_parameters(specs, {"a": 1, "\x1b]0;t\x07" * 500: 2}),
        ParameterError,
        "unknown hostile parameter name",
    )


# ------------------------------------------------------------------------ version names


@HYP
@given(name=nasty_text)
def test_version_names(tally: Tally, name: str) -> None:
    try:
        catalog.check_version_name(name)
    except InvalidInput as exc:
        problem = message_problem(str(exc))
        tally.bad(AREA, problem is None, f"version name: {problem}: {str(exc)[:100]!r}")
        assert problem is None, str(exc)
        assert exc.field == "version_name"
        return
    tally.bad(AREA, True)
    assert VERSION_NAME_RE.match(name)
    assert not set(name) & set("/\\ \t\n\r\x00$`;&|<>*?'\"~") and name not in (".", "..")
    assert not CONTROL_RX.search(name)


# --------------------------------------------------------- names through the engine


@pytest.mark.anyio
async def test_short_secrets_are_refused(tmp_path: Path, tally: Tally) -> None:
    """Issue 16 item 4: a 3-character secret was 'masked' nowhere (masking needs 4+),
    and a short one is guessed anyway."""
    async with Engine(make_settings(tmp_path)) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        for bad in ("abc", "1234567"):
            exc = await expect_refusal_async(
                tally, AREA, lambda bad=bad: e.launch("rel-probe", "m/v1", {"token": bad}),
                InvalidInput, f"secret of {len(bad)} characters",
                klass="secrets visible to another user",
            )  # fmt: skip
            assert "at least 8 characters" in str(exc) and bad not in str(exc)
        job = await e.launch("rel-probe", "m/v1", {"token": ""})  # empty: not given
        assert "token" not in job.parameters


@pytest.mark.parametrize(
    "args",
    [
        ["--framework", "onnx\x1b]0;x\x07"],
        ["--tag", "a\x1b[2J"],
        ["--label", "l\nl"],
        ["--label", "evil\u202etxt"],
        ["--framework", "f" * 100],
    ],
)
def test_models_import_refuses_control_characters(
    tmp_path: Path, tally: Tally, args: list[str]
) -> None:
    """Issue 16 item 10: they were stored and printed raw by import, list, show."""
    s = make_settings(tmp_path)
    cfg = config_file(s, tmp_path / "c.toml")
    out = run_cli(["--config", str(cfg), "models", "import", "m/v1", str(model_file(tmp_path)),
                   *args], env=cli_env())  # fmt: skip
    listed = run_cli(["--config", str(cfg), "models", "list"], env=cli_env())
    ok = (out.returncode == 2 and message_problem(out.stderr.strip()) is None
          and "m/v1" not in listed.stdout and not CONTROL_RX.search(listed.stdout))  # fmt: skip
    tally.bad(AREA, ok, f"models import {args[0]} {args[1][:20]!r}: rc {out.returncode}")
    assert ok, (out.returncode, out.stderr, listed.stdout)


def test_usage_mistakes_exit_2_with_one_line(tmp_path: Path, tally: Tally) -> None:
    """Issue 16 item 15: `--labels-file /nonexistent` exited 70 'unexpected', `jobs
    list --status bogus` printed nothing and exited 0."""
    s = make_settings(tmp_path)
    cfg = config_file(s, tmp_path / "c.toml")
    bad_json = tmp_path / "labels.json"
    bad_json.write_text("[1, 2")
    cases = [
        ["models", "import", "m/v1", str(model_file(tmp_path)), "--labels-file", "/nonexistent"],
        ["models", "import", "m/v2", str(model_file(tmp_path)), "--labels-file", str(bad_json)],
        ["jobs", "list", "--status", "bogus"],
    ]
    for args in cases:
        out = run_cli(["--config", str(cfg), *args], env=cli_env())
        ok = out.returncode == 2 and message_problem(out.stderr.strip()) is None
        tally.bad(AREA, ok, f"{' '.join(args[:2])} {args[-1]}: rc {out.returncode}")
        assert ok, (args, out.returncode, out.stderr)


@pytest.mark.anyio
async def test_a_private_processing_cannot_take_a_public_image_or_another_name(
    tmp_path: Path, tally: Tally
) -> None:
    """Issue 16 item 9: a private processing named a bundled image (building it
    would replace the public image), and `processings create` from another
    folder with an existing name replaced that processing silently."""
    s = make_settings(tmp_path)

    def folder(name: str, proc: str, image: str) -> Path:
        d = tmp_path / name
        d.mkdir()
        doc = {**VALID_TOML, "name": proc, "image": image, "build": {}}
        (d / "processing.toml").write_text(tomli_w.dumps(doc))
        (d / "Dockerfile").write_text("FROM python:3.11-slim\n")
        return d

    async with Engine(s) as e:
        public = (await e.processings())[0]
        for i, image in enumerate((public.image, public.image.split(":")[0] + ":9.9.9")):
            d = folder(f"p{i}", "mine", image)
            await expect_refusal_async(
                tally, AREA, lambda d=d: e.create_processing(d),  # type: ignore[misc]
                InvalidInput, f"private processing with the public image {image}",
            )  # fmt: skip
        first = await e.create_processing(folder("one", "mine", "me/mine:1"))
        assert first.source_dir and first.source_dir.endswith("one")
        exc = await expect_refusal_async(
            tally, AREA, lambda: e.create_processing(folder("two", "mine", "me/other:1")),
            InvalidInput, "processings create from another folder with an existing name",
        )  # fmt: skip
        assert "already exists" in str(exc)
        assert (await e.processing("mine")).source_dir == first.source_dir
        # Nor can an update of its folder switch it to a public image.
        toml = tmp_path / "one" / "processing.toml"
        toml.write_text(toml.read_text().replace("me/mine:1", public.image))
        await expect_refusal_async(
            tally, AREA, lambda: e.update_processing("mine"), InvalidInput,
            "processings update to a public image",
        )  # fmt: skip


@pytest.mark.anyio
async def test_hostile_names_through_the_engine(tmp_path: Path, tally: Tally) -> None:
    """Version names, model names and references with shell metacharacters and path
    separators given to import, launch and the lookups: each refused in one line, no
    job written, the database intact."""
    s = make_settings(tmp_path)
    names = [
        "../../etc/passwd", "a/b", "a\\b", "..", ".", "-rf", "$(touch /tmp/pwn)", "`id`",
        "a;b", "a|b", "a b", "a\nb", "x" * 65, "", "\x1b]0;t\x07", "v\x00", "é", "~root",
    ]  # fmt: skip
    async with Engine(s) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        for bad in names:
            if bad:  # an empty output name means "the default name"
                await expect_refusal_async(
                    tally,
                    AREA,
                    lambda bad=bad: e.launch("rel-probe", "m/v1", output_version_name=bad),
                    InvalidInput,
                    f"launch output name {bad!r}",
                )
            await expect_refusal_async(
                tally,
                AREA,
                lambda bad=bad: e.import_version(
                    "m", bad, [model_file(tmp_path)], framework="onnx"
                ),
                InvalidInput,
                f"import version {bad!r}",
            )
            if bad not in ("é",):  # a model name may not hold these either
                await expect_refusal_async(
                    tally,
                    AREA,
                    lambda bad=bad: e.import_version(
                        bad, "v9", [model_file(tmp_path)], framework="onnx"
                    ),
                    InvalidInput,
                    f"import model {bad!r}",
                )
            await expect_refusal_async(
                tally,
                AREA,
                lambda bad=bad: e.launch(bad, "m/v1"),
                (NotFound, InvalidInput),
                f"launch processing {bad!r}",
            )
            await expect_refusal_async(
                tally,
                AREA,
                lambda bad=bad: e.launch("rel-probe", f"m/{bad}"),
                (NotFound, InvalidInput),
                f"launch on version {bad!r}",
            )
            if bad:  # an empty value means "the default"
                await expect_refusal_async(
                    tally,
                    AREA,
                    lambda bad=bad: e.launch("rel-probe", "m/v1", {"lines": bad}),
                    InvalidInput,
                    f"parameter lines={bad!r}",
                )
                await expect_refusal_async(
                    tally,
                    AREA,
                    lambda bad=bad: e.launch("rel-probe", "m/v1", {"token": bad + "\x1b[2J"}),
                    InvalidInput,
                    f"secret token={bad!r}+ESC",
                )
        assert await e.count_jobs() == 0
        assert [v.ref for v in await e.versions()] == ["m/v1"]
        for bad in ("../x", "a b", "$(id)", "A", "x/y"):
            expect_refusal(
                tally,
                AREA,
                lambda bad=bad: catalog.scaffold(e.ws, bad, tmp_path),
                InvalidInput,
                f"scaffold {bad!r}",
            )
    assert integrity(s.database_path) == "ok"


@pytest.mark.anyio
async def test_hypothesis_launch_never_writes_a_bad_job(tmp_path: Path, tally: Tally) -> None:
    """Random parameters and output names through Engine.launch: either a clean job
    whose stored values fit their specs, or a one-line refusal and nothing written."""
    s = make_settings(tmp_path, concurrency=1)
    async with Engine(s) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            params=st.dictionaries(
                st.sampled_from(["lines", "interval", "fail", "out", "logs", "token", "zzz"]),
                hostile_values,
                max_size=3,
            ),
            out_name=st.none() | nasty_text,
        )
        def prop(params: dict[str, Any], out_name: str | None) -> None:
            before = query(s.database_path, "select count(*) from job")[0][0]

            async def go() -> Any:
                return await e.launch("rel-probe", "m/v1", params, output_version_name=out_name)

            try:
                job = anyio.from_thread.run(go)
            except EngineError as exc:
                problem = message_problem(str(exc))
                tally.bad(AREA, problem is None, f"launch: {problem}: {str(exc)[:100]!r}")
                assert problem is None, str(exc)
                assert query(s.database_path, "select count(*) from job")[0][0] == before
                return
            tally.bad(AREA, True)
            assert "token" not in job.parameters or job.parameters["token"] == "••••••"
            for v in job.parameters.values():
                assert not (isinstance(v, str) and CONTROL_RX.search(v))

        await anyio.to_thread.run_sync(prop)
    assert integrity(s.database_path) == "ok"


# ---------------------------------------------------------------------- output archives


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _m(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"x", **kw: Any) -> Any:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for k, v in kw.items():
        setattr(info, k, v)
    return info, data if kind == tarfile.REGTYPE else None


def _root() -> Any:
    return _m("outputs", tarfile.DIRTYPE)


HOSTILE_ARCHIVES: dict[str, bytes] = {
    "absolute path": _tar(_root(), _m("/etc/cron.d/evil")),
    "absolute path under prefix": _tar(_root(), _m("/outputs/x")),
    "dot-dot": _tar(_root(), _m("outputs/../../evil")),
    "dot-dot deep": _tar(_root(), _m("outputs/a/../../../evil")),
    "absolute symlink": _tar(_root(), _m("outputs/p", tarfile.SYMTYPE, linkname="/etc/passwd")),
    "relative symlink out": _tar(_root(), _m("outputs/p", tarfile.SYMTYPE, linkname="../../x")),
    "symlink then write through it": _tar(
        _root(), _m("outputs/d", tarfile.SYMTYPE, linkname="/tmp"), _m("outputs/d/evil")
    ),
    "hardlink out": _tar(_root(), _m("outputs/h", tarfile.LNKTYPE, linkname="/etc/passwd")),
    "hardlink inside": _tar(
        _root(), _m("outputs/a"), _m("outputs/h", tarfile.LNKTYPE, linkname="outputs/a")
    ),
    "char device": _tar(_root(), _m("outputs/null", tarfile.CHRTYPE, devmajor=1, devminor=3)),
    "block device": _tar(_root(), _m("outputs/sda", tarfile.BLKTYPE, devmajor=8, devminor=0)),
    "fifo": _tar(_root(), _m("outputs/pipe", tarfile.FIFOTYPE)),
    "over quota, one file": _tar(_root(), _m("outputs/big", data=b"0" * 5000)),
    "over quota, many files": _tar(
        _root(), *[_m(f"outputs/f{i}", data=b"0" * 700) for i in range(10)]
    ),
    "output dir is a symlink": _tar(_m("outputs", tarfile.SYMTYPE, linkname="/etc")),
    "outside the prefix": _tar(_root(), _m("other/x")),
    "file then dir same name": _tar(_root(), _m("outputs/a"), _m("outputs/a/b")),
    "dir then file same name": _tar(_root(), _m("outputs/a", tarfile.DIRTYPE), _m("outputs/a")),
    "name too long": _tar(_root(), _m("outputs/" + "n" * 300)),
    "invalid utf-8 name": _tar(_root(), _m("outputs/bad\udcff.bin")),
    "control characters in name": _tar(_root(), _m("outputs/x\x1b]0;pwned\x07.bin")),
    "newline in name": _tar(_root(), _m("outputs/a\nb")),
    "truncated archive": _tar(_root(), _m("outputs/a", data=b"y" * 2000))[:1500],
    "garbage": b"this is not a tar archive at all" * 40,
    "empty stream": b"",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ARCHIVES))
def test_hostile_output_archives(tmp_path: Path, tally: Tally, case: str) -> None:
    data = HOSTILE_ARCHIVES[case]
    dest = tmp_path / "out" / "dest"
    outside = sorted(tmp_path.rglob("*"))
    if case == "empty stream":
        # Nothing at all is not an attack: an empty output folder, or a clean refusal.
        try:
            safe_extract(data, dest, 4096)
        except OutputRejected as exc:
            assert message_problem(str(exc)) is None
        tally.bad(AREA, True)
        return
    expect_refusal(
        tally,
        AREA,
        lambda: safe_extract(data, dest, 4096),
        OutputRejected,
        f"archive: {case}",
    )
    assert not dest.exists() and not dest.is_symlink()
    # Nothing written anywhere: no partial folder left beside dest either.
    assert sorted(p for p in tmp_path.rglob("*") if p != dest.parent) == [
        p for p in outside if p != dest.parent
    ]
    assert not (dest.parent.exists() and any(dest.parent.iterdir()))


def test_too_many_entries_refused(tmp_path: Path, tally: Tally) -> None:
    data = _tar(_root(), *[_m(f"outputs/f{i}", data=b"") for i in range(20)])
    expect_refusal(
        tally,
        AREA,
        lambda: safe_extract(data, tmp_path / "d", 10**6, max_entries=10),
        OutputRejected,
        "archive: too many entries",
    )


def test_harmless_odd_names_are_neutralized(tmp_path: Path, tally: Tally) -> None:
    """Backslashes, dots and unicode in a name are plain file names on Linux."""
    names = ["outputs/..\\..\\x", "outputs/.hidden", "outputs/a..b", "outputs/é.onnx"]
    data = _tar(_root(), *[_m(n) for n in names])
    safe_extract(data, tmp_path / "d", 4096)
    got = sorted(p.relative_to(tmp_path / "d").as_posix() for p in (tmp_path / "d").rglob("*"))
    assert got == sorted(n.removeprefix("outputs/") for n in names)
    assert all(p.resolve().is_relative_to(tmp_path / "d") for p in (tmp_path / "d").rglob("*"))
    tally.bad(AREA, True)


# ----------------------------------------------------------------------- result.json


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2]",
        '"a string"',
        '{"framework": 3}',
        '{"framework": "' + "f" * 100 + '"}',
        '{"framework": "onnx\\u001b]0;t\\u0007"}',
        '{"tags": "notalist"}',
        '{"tags": ["\\u001b[2J"]}',
        '{"labels": [1, 2]}',
        '{"metrics": {"acc": [1]}}',
        '{"metrics": {"\\u001b]8;;http://e/\\u001b\\\\": 1}}',
        '{"metrics": []}',
        '{"metrics": {"acc": NaN}}',  # issue 16 item 11: not JSON, printed as such later
        '{"metrics": {"acc": -Infinity}}',
        "\udcff",
    ],
)
def test_hostile_result_json(tmp_path: Path, tally: Tally, content: str) -> None:
    (tmp_path / "result.json").write_bytes(content.encode("utf-8", "surrogateescape"))
    expect_refusal(
        tally,
        AREA,
        lambda: catalog.read_result(tmp_path),
        InvalidInput,
        f"result.json {content[:40]!r}",
    )


@pytest.mark.parametrize("case", ["directory", "nested", "fifo", "symlink", "too big"])
def test_result_json_that_is_not_a_small_regular_file(
    tmp_path: Path, tally: Tally, case: str
) -> None:
    """Issue 16 item 8: a directory gave IsADirectoryError, '[' 100,000 deep a
    RecursionError, both as engine errors."""
    p = tmp_path / "result.json"
    if case == "directory":
        p.mkdir()
    elif case == "nested":
        p.write_text("[" * 100_000 + "]" * 100_000)
    elif case == "fifo":
        os.mkfifo(p)  # reading it would block forever
    elif case == "symlink":
        p.symlink_to("/etc/passwd")
    else:
        p.write_text('{"tags": [' + ",".join(['"x"'] * 400_000) + "]}")
    expect_refusal(
        tally, AREA, lambda: catalog.read_result(tmp_path), InvalidInput, f"result.json {case}",
        klass="hostile result.json",
    )  # fmt: skip


def test_processing_toml_nested_too_deep(tally: Tally) -> None:
    """Issue 16 item 8: `x=[[[...]]]` was 'unexpected RecursionError', exit 70."""
    text = tomli_w.dumps(VALID_TOML) + "\nx = " + "[" * 100_000 + "]" * 100_000 + "\n"
    expect_refusal(
        tally, AREA, lambda: parse_definition(text, "p/processing.toml"), DefinitionError,
        "processing.toml nested 100,000 deep",
    )  # fmt: skip


def test_no_shell_ever_ran_a_hostile_name() -> None:
    """Names like `$(touch /tmp/pwn)` above went through every path as plain data."""
    assert not os.path.exists("/tmp/pwn")
    assert not os.path.exists("/etc/cron.d/evil")
