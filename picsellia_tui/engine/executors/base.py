"""The executor protocol: how the engine starts, follows and collects one run.

Executors are stateless about runs: everything needed to find a run again after a
restart is its `ref` (container id, or the process executor's run folder), which the
engine stores in the Run row. That is what makes reattach and reconciliation work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple, Protocol, runtime_checkable

from picsellia_tui.storage.logfile.record import Stream


class LogLine(NamedTuple):
    """One log line. A named tuple, not a dataclass: capture makes one per line
    (a million for a big run) and a tuple is made several times faster."""

    ts_ns: int  # nanoseconds since the epoch, UTC, as stamped by the source
    stream: Stream
    text: str  # one line, without its line ending; may hold \r and escape sequences


@dataclass(frozen=True, slots=True)
class InputFile:
    path: str  # relative path inside the inputs dir ("model.onnx", "eval/data.npz")
    source: Path  # where the bytes are on the engine's machine (blob store)


@dataclass(frozen=True, slots=True)
class Limits:
    cpu: float | None = None  # cores
    memory_bytes: int | None = None
    pids: int | None = 512
    gpu: bool = False
    network: bool = False
    writable_rootfs: bool = False  # else a read-only root file system (tmpfs /tmp)
    capabilities: tuple[str, ...] = ()  # added back to an empty set


@dataclass(frozen=True, slots=True)
class ApiAccess:
    """The engine's local Picsellia API, for a run that asks for it: the executor
    makes it reachable from the run and sets env `host` to where the run finds it."""

    socket_dir: Path  # on the engine's machine; holds api.sock (docker: relayed)
    tcp_url: str  # http://127.0.0.1:PORT (process executor)
    # The run's token (a secret: never logged) and the folder the API serves the
    # run's files from (context, inputs) and takes its outputs into: how a run on a
    # cluster node gets its files without a shared disk.
    token: str = field(default="", repr=False)
    files_dir: Path | None = None


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    job_id: str
    attempt: int
    name: str  # container / folder name, derived from the run, safe for Docker
    image: str  # reference or digest the job resolved
    command: list[str]  # empty: the image's own CMD (docker)
    env: dict[str, str]  # includes secrets: never log or persist this
    context_json: bytes
    inputs: list[InputFile]
    labels: dict[str, str]
    limits: Limits = field(default_factory=Limits)
    processing_dir: Path | None = None  # process executor: where the code lives
    entrypoint: list[str] | None = None  # docker: replaces the image's ENTRYPOINT
    api: ApiAccess | None = None  # serve the local Picsellia API to this run
    # Called with why the run waits (a cluster with no node for it yet), then None.
    on_pending: Callable[[str | None], Awaitable[None]] | None = None
    # Secrets delivered as files: environment name -> value. The run finds each at
    # the path in <NAME>_FILE (docker: /run/secrets/<NAME>, on a tmpfs, 0400).
    secret_files: dict[str, str] = field(default_factory=dict)


ExecStatus = Literal["created", "running", "exited", "missing"]


@dataclass(frozen=True, slots=True)
class ExecState:
    status: ExecStatus
    exit_code: int | None = None
    started_ns: int | None = None
    finished_ns: int | None = None
    error: str | None = None  # e.g. "OOMKilled", daemon's own message
    node: str | None = None  # the cluster node it runs on (swarm)


class ExecutorError(Exception):
    """A failure the user must read: one clear line, no traceback."""


class ImageMissing(ExecutorError):
    pass


class HostUnreachable(ExecutorError):
    pass


class HostRefused(HostUnreachable):
    """The host answered but refuses us for a reason waiting cannot fix: a TLS
    certificate that does not verify, an unknown or changed SSH host key, refused
    authentication. Not retried."""


class OutputRejected(ExecutorError):
    """Outputs that are unsafe (path escape, links, devices) or over quota."""


@runtime_checkable
class Executor(Protocol):
    kind: str  # "docker" | "swarm" | "process"
    host: str  # "local", "unix:///var/run/docker.sock", "ssh://root@gpu-box", ...

    async def resolve_image(self, image: str, *, processing: str | None = None) -> str:
        """Return an immutable reference (digest / image id); pull if absent.

        Raises ImageMissing with a one-line hint on how to build it (naming
        `processing` when given).
        """
        ...

    async def start(self, spec: RunSpec) -> str:
        """Create, stage inputs + context, start. Returns the ref to store."""
        ...

    def follow_logs(self, ref: str, since_ns: int | None = None) -> AsyncIterator[LogLine]:
        """Lines with timestamp >= since_ns (None: all), in order, until the run exits."""
        ...

    async def wait(self, ref: str) -> int:
        """Exit code once the run has exited."""
        ...

    async def collect_outputs(self, ref: str, dest: Path, quota_bytes: int) -> None:
        """Copy the output dir into `dest` (must not exist yet). Raises OutputRejected."""
        ...

    async def kill(self, ref: str, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after grace_s. Idempotent."""
        ...

    async def inspect(self, ref: str) -> ExecState: ...

    async def remove(self, ref: str) -> None:
        """Forget the run's container / folder. Idempotent."""
        ...

    async def find(self, run_id: str) -> str | None:
        """The ref of the run's container/folder, found by label, or None."""
        ...

    async def aclose(self) -> None: ...
