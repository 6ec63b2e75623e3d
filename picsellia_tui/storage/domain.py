"""Domain vocabulary shared by every layer: enums, parameter specs, constraints.

These are plain pydantic models (no table), so a `processing.toml`, a database
row and a job's frozen snapshot all speak the same types.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Task(StrEnum):
    MODEL_COMPRESSION = "MODEL_COMPRESSION"
    MODEL_CONVERSION = "MODEL_CONVERSION"
    AUTO_TAGGING = "AUTO_TAGGING"
    PRE_ANNOTATION = "PRE_ANNOTATION"
    DATA_AUGMENTATION = "DATA_AUGMENTATION"
    DATASET_VERSION_CREATION = "DATASET_VERSION_CREATION"
    AUTO_ANNOTATION = "AUTO_ANNOTATION"
    DATA_AUTO_TAGGING = "DATA_AUTO_TAGGING"


class TargetType(StrEnum):
    MODEL_VERSION = "model_version"
    DATASET_VERSION = "dataset_version"
    DATALAKE = "datalake"


class OutputMode(StrEnum):
    NEW_MODEL_VERSION = "new_model_version"
    UPDATE_INPUT = "update_input"
    NONE = "none"


class Visibility(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"

    @property
    def is_active(self) -> bool:
        return self in (RunStatus.PENDING, RunStatus.RUNNING)

    @property
    def is_final(self) -> bool:
        return not self.is_active


# The run state machine: the only legal moves. Anything else is a bug or a race
# lost to another engine, and is refused where the status is written.
RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.PENDING: frozenset({RunStatus.RUNNING, RunStatus.FAILED, RunStatus.KILLED}),
    RunStatus.RUNNING: frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.KILLED}),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.KILLED: frozenset(),
}


def can_transition(old: RunStatus, new: RunStatus) -> bool:
    return new in RUN_TRANSITIONS[old]


ParamType = Literal["str", "int", "float", "bool", "choice"]

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# Version names end up in file names, container names and tables: keep them tame.
VERSION_NAME_MAX = 64
VERSION_NAME_RE = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{VERSION_NAME_MAX - 1}}}$")
VERSION_NAME_RULE = (
    f"letters, digits, '.', '_' or '-', starting with a letter or digit, at most {VERSION_NAME_MAX}"
)
# Text shown in a terminal must not carry control sequences (title changes, screen
# clears, hyperlinks, bells): C0 controls but tab and newline, DEL and C1 are refused,
# and so are the bidi overrides that make a line read other than it is (U+202E).
_CONTROL_RX = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
MAX_DESCRIPTION = 10_000  # characters; a screenful is a few thousand
# Environment variables a process needs (or that change how it loads code): a
# secret parameter is passed as NAME (or NAME_FILE) and must not replace them.
RESERVED_ENV = frozenset(
    {"PATH", "HOME", "USER", "SHELL", "PWD", "TERM", "LANG", "TZ", "TMPDIR", "HOSTNAME",
     "IFS", "ENV", "BASH_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PICSELLIA_CONTEXT",
     "JOB_ID", "RUN_ID", "ORGANIZATION_ID", "NODE_OPTIONS", "PERL5LIB", "RUBYLIB"}
)  # fmt: skip
RESERVED_ENV_PREFIXES = ("LD_", "LC_", "PYTHON", "DYLD_", "PICSELLIA_", "DOCKER_", "SSH_")
# Capabilities a processing may ask for: Docker's default set without NET_RAW and
# MKNOD. What reaches the host's kernel or other processes (SYS_ADMIN, SYS_PTRACE,
# NET_ADMIN, SYS_MODULE, ...) is never granted.
GRANTABLE_CAPS = frozenset(
    {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
     "NET_BIND_SERVICE", "SYS_CHROOT", "AUDIT_WRITE", "SETFCAP"}
)  # fmt: skip
# Docker's smallest memory limit is 6 MiB; past a pebibyte the value is a typo.
MEMORY_LIMIT_RANGE = (6 * 1024**2, 1024**5)


def shorten(value: object, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters: a hostile value never floods a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_text(value: str, what: str, *, newlines: bool = True) -> str:
    """`value` if it holds no terminal control character; else ValueError naming `what`."""
    bad = _CONTROL_RX.search(value) or (None if newlines else re.search("[\n\t]", value))
    if bad:
        raise ValueError(f"{what} holds a control character ({bad.group()!r}); remove it")
    return value


def stored_spec(p: dict[str, Any]) -> dict[str, Any]:
    """A parameter spec as any version stored it, ready for ParamSpec: a bound that
    is not a finite number (NaN, +/-Infinity, accepted before validation refused
    them) bounds nothing, as it did then (every comparison with NaN is false)."""
    out = dict(p)
    for k in ("min", "max"):
        v = out.get(k)
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = None
    return out


class ParamSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    type: ParamType
    default: Any = None
    required: bool = False
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)
    choices: list[str] | None = Field(default=None, max_length=1000)
    help: str = Field(default="", max_length=2000)
    secret: bool = False

    @model_validator(mode="after")
    def _coherent(self) -> ParamSpec:
        if self.type == "choice" and not self.choices:
            raise ValueError(f"parameter {self.name!r}: type 'choice' needs a non-empty 'choices'")
        if self.type != "choice" and self.choices:
            raise ValueError(f"parameter {self.name!r}: 'choices' only goes with type 'choice'")
        if (self.min is not None or self.max is not None) and self.type not in ("int", "float"):
            raise ValueError(f"parameter {self.name!r}: min/max only go with int or float")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"parameter {self.name!r}: min {self.min} is above max {self.max}")
        if self.secret and self.type != "str":
            raise ValueError(f"parameter {self.name!r}: only 'str' parameters can be secret")
        if self.secret and self.default is not None:
            raise ValueError(
                f"parameter {self.name!r}: a secret has no default (anyone reading the "
                "definition would know it); it is given at launch"
            )
        if self.secret and reserved_env(self.name):
            raise ValueError(
                f"parameter {self.name!r}: a secret is passed as the environment variable "
                f"{self.name.upper()}, which the process needs for itself; pick another name"
            )
        check_text(self.help, f"parameter {self.name!r}: help")
        for choice in self.choices or []:
            check_text(choice, f"parameter {self.name!r}: choice {choice[:40]!r}", newlines=False)
        if self.default is not None:
            from picsellia_tui.storage.params import coerce_value

            coerce_value(self, self.default)  # raises ValueError naming the parameter
        return self


class Constraints(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    frameworks: list[str] = Field(default_factory=list)  # empty = any framework
    required_files: list[str] = Field(default_factory=list)  # glob patterns
    cpu: float | None = Field(default=None, gt=0, le=512)
    memory: str | None = None  # docker style: "512m", "2g"
    gpu: bool = False
    network: bool = False
    # A container starts with no capability and a read-only root file system; a
    # processing that needs more says so here (and `processings show` says it).
    writable_rootfs: bool = False
    capabilities: list[str] = Field(default_factory=list)
    # Secrets are files (/run/secrets/NAME, path in NAME_FILE); an image that reads
    # them from the environment says so (`docker inspect` then shows them).
    secrets_in_env: bool = False

    @field_validator("capabilities")
    @classmethod
    def _capabilities(cls, v: list[str]) -> list[str]:
        out = []
        for cap in v:
            name = cap.upper().removeprefix("CAP_")
            if name not in GRANTABLE_CAPS:
                raise ValueError(
                    f"capability {shorten(cap, 40)} cannot be asked for; one of "
                    f"{', '.join(sorted(GRANTABLE_CAPS))}"
                )
            out.append(name)
        return sorted(set(out))

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: str | None) -> str | None:
        if v is not None:
            check_memory_limit(v)
        return v

    @field_validator("frameworks")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        return [f.lower() for f in v]


def parse_memory(value: str) -> int:
    """'512m' -> bytes. Raises ValueError with the offending text."""
    m = re.fullmatch(r"\s*(\d{1,30}(?:\.\d{1,30})?)\s*([kmgt]?)i?b?\s*", value.lower())
    if not m:
        raise ValueError(f"memory {shorten(value)} is not a size like '512m' or '2g'")
    mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[m.group(2)]
    n = float(m.group(1)) * mult
    if n >= 2**63:
        raise ValueError(f"memory {shorten(value)} is too large")
    return int(n)


def check_memory_limit(value: str) -> int:
    """A memory limit for a container: a size Docker accepts (6 MiB at least) and
    not an absurd one (a pebibyte at most)."""
    n = parse_memory(value)
    lo, hi = MEMORY_LIMIT_RANGE
    if not lo <= n <= hi:
        raise ValueError(f"memory {shorten(value)} is outside 6m..1024t")
    return n


def reserved_env(param_name: str) -> bool:
    """Whether a parameter's environment variable would replace one a process needs."""
    env = param_name.upper()
    base = env.removesuffix("_FILE")
    return any(e in RESERVED_ENV or e.startswith(RESERVED_ENV_PREFIXES) for e in (env, base))


class BuildSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    context: str = "."  # relative to the processing folder
    dockerfile: str = "Dockerfile"  # relative to the processing folder

    @field_validator("context", "dockerfile")
    @classmethod
    def _inside(cls, v: str) -> str:
        # Relative to the processing's folder. Bundled processings share a base layer
        # one level up (".."); a private processing's context must stay inside its
        # folder, which the engine checks when it builds.
        if not v or PurePosixPath(v).is_absolute() or v.startswith("~") or "\\" in v:
            raise ValueError(f"{shorten(v)} must be a path relative to the processing folder")
        return check_text(v, "build path", newlines=False)


class PicselliaSection(BaseModel):
    """`[picsellia]`: what the run gets of Picsellia's own platform."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Serve the local Picsellia API to the run (api_token, host, organization_*,
    # job_id in its environment): images written with the picsellia SDK run unchanged.
    api: bool = False


class ProcessingDefinition(BaseModel):
    """What a `processing.toml` says, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str = Field(default="1.0.0", min_length=1, max_length=32)
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    task: Task
    target_type: TargetType = TargetType.MODEL_VERSION
    image: str = Field(min_length=1, max_length=256)
    # Empty: the image's own ENTRYPOINT/CMD runs (the process executor needs one).
    command: list[str] = Field(default_factory=list)
    # Replaces the image's ENTRYPOINT when given (`command` then gives its arguments).
    entrypoint: list[str] | None = Field(default=None, min_length=1)
    output_mode: OutputMode = OutputMode.NEW_MODEL_VERSION
    parameters: list[ParamSpec] = Field(default_factory=list)
    constraints: Constraints = Field(default_factory=Constraints)
    build: BuildSpec = Field(default_factory=BuildSpec)
    picsellia: PicselliaSection = Field(default_factory=PicselliaSection)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(
                "must be lowercase letters, digits, '.', '_' or '-', starting with a letter "
                "or digit, at most 64 characters"
            )
        return v

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        return check_text(v, "version", newlines=False)

    @field_validator("description")
    @classmethod
    def _description(cls, v: str) -> str:
        return check_text(v, "description")

    @field_validator("command", "entrypoint")
    @classmethod
    def _command(cls, v: list[str] | None) -> list[str] | None:
        for arg in v or []:
            if "\x00" in arg:
                raise ValueError(f"argument {arg[:40]!r} holds a NUL byte")
        return v

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*", v):
            raise ValueError(f"{shorten(v)} is not a Docker image reference")
        return v

    @field_validator("parameters")
    @classmethod
    def _unique(cls, v: list[ParamSpec]) -> list[ParamSpec]:
        seen: set[str] = set()
        for p in v:
            if p.name in seen:
                raise ValueError(f"parameter {p.name!r} is declared twice")
            seen.add(p.name)
        return v

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.parameters if p.name == name), None)
