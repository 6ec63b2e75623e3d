"""The docker executor: one run = one detached container on a Docker host.

The `ref` of a run is the container's full id. Everything is async; blocking
docker-py calls run in worker threads. Containers outlive the app (no auto-remove):
`find(run_id)` finds them again by label after a restart.

Inside the container (see docs/run-contract.md):
`/picsellia/context.json`, `/picsellia/inputs/` (copied in with `put_archive` before
start), `/picsellia/outputs/` (world-writable, taken out with `get_archive` after the
exit, through `archives.safe_extract`), env `PICSELLIA_CONTEXT`.

Confinement: never privileged, `no-new-privileges`, every capability dropped (a
processing may ask for a few back: `Limits.capabilities`), a read-only root file
system unless the processing asks (`writable_rootfs`) with a tmpfs `/tmp`, the
image's own USER, no bind mount (so no Docker socket; `/picsellia` is an anonymous
volume of the container, removed with it), no host network, no network at all
unless the processing asks (`Limits.network`), memory (swap included), cpu and pids
limits, json-file logs bounded in size, tini as PID 1 so SIGTERM reaches the code.

The json-file limit is large (512 MB, 2 files) on purpose: the engine keeps its own
copy of the log, Docker's file is only the buffer it follows, and Docker 20.10
drops lines of a followed log when the file rotates (1,000,000 lines of 100 bytes
fill ~175 MB: with 50 MB files about 30% of them were lost).
"""

from __future__ import annotations

import contextlib
import math
import os
import tarfile
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar, cast

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import docker
import docker.errors
import docker.types
import requests.exceptions

from picsellia_tui.engine.executors import api_relay
from picsellia_tui.engine.executors.archives import safe_extract
from picsellia_tui.engine.executors.base import (
    ExecState,
    ExecStatus,
    ExecutorError,
    ImageMissing,
    InputFile,
    LogLine,
    OutputRejected,
    RunSpec,
)
from picsellia_tui.engine.executors.docker_logs import (
    ContainerMissing,
    LogSource,
    follow_container_log_batches,
    open_attach,
    parse_docker_ts,
)
from picsellia_tui.engine.executors.docker_private import abort_response, stream_request
from picsellia_tui.engine.hosts import HostConfig, _SSHTarget, connect, describe_error, one_line
from picsellia_tui.engine.images import immutable_ref, missing_image_message
from picsellia_tui.storage.domain import parse_memory
from picsellia_tui.storage.logfile.record import Stream

__all__ = [
    "CONTEXT_PATH",
    "INPUTS_DIR",
    "LABEL_ENGINE",
    "LABEL_JOB",
    "LABEL_RUN",
    "OUTPUTS_DIR",
    "ContainerMissing",
    "DockerExecutor",
]

T = TypeVar("T")

ROOT_DIR = "/picsellia"  # the run's own volume
CONTEXT_PATH = "/picsellia/context.json"
INPUTS_DIR = "/picsellia/inputs"
OUTPUTS_DIR = "/picsellia/outputs"

LABEL_RUN = "picsellia-tui.run_id"
LABEL_JOB = "picsellia-tui.job_id"
LABEL_ENGINE = "picsellia-tui.engine_id"
LABEL_ATTEMPT = "picsellia-tui.attempt"
LABEL_IMAGE = "picsellia-tui.image"

TMP_SIZE = "1g"  # the /tmp tmpfs; it counts against the memory limit
_COPY_CHUNK = 1024 * 1024
_WAIT_CHUNK_S = 300  # one wait request at most this long, then ask again
_ZERO_TIME = "0001-01-01T00:00:00Z"


def _ts_ns(value: str | None) -> int | None:
    if not value or value.startswith("0001-01-01"):
        return None
    return parse_docker_ts(value.encode())


# -------------------------------------------------------------------------- staging tar


def _tar_header(name: str, kind: bytes, size: int = 0, mode: int = 0o644) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = mode
    info.mtime = int(time.time())
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _pad(size: int) -> bytes:
    rem = size % tarfile.BLOCKSIZE
    return b"\0" * (tarfile.BLOCKSIZE - rem) if rem else b""


def _input_parts(f: InputFile) -> tuple[str, ...]:
    pure = PurePosixPath(f.path)
    if f.path.startswith("/") or not pure.parts or any(p in ("..", "") for p in pure.parts):
        raise ExecutorError(f"input path {f.path!r} must be relative and stay in the inputs dir")
    return pure.parts


def check_inputs(inputs: list[InputFile]) -> list[tuple[str, ...]]:
    """Validate input paths (relative, inside inputs/) and that their sources exist."""
    parts_list = [_input_parts(f) for f in inputs]
    seen: set[tuple[str, ...]] = set()
    for f, parts in zip(inputs, parts_list, strict=True):
        if parts in seen:
            raise ExecutorError(f"input path {f.path!r} is listed twice")
        seen.add(parts)
        if not Path(f.source).is_file():
            raise ExecutorError(f"input {f.path!r}: {f.source} is missing on this machine")
    return parts_list


# Secret files reach the container's tmpfs through this script, run by the image's
# own shell as the image's own user before its entrypoint: the root file system
# is read-only and Docker cannot copy into a tmpfs. It reads each staged file (in
# the run's own volume), writes it 0400 to /run/secrets, empties the staged copy,
# then becomes the image's command. Shell builtins only.
SECRETS_DIR = "/run/secrets"
STAGED_SECRETS = ".secrets"
SECRETS_SCRIPT = (
    'for f in /picsellia/.secrets/*; do [ -f "$f" ] || continue; v=; '
    'IFS= read -r v < "$f"; '
    '(umask 377; printf "%s" "$v" > "/run/secrets/${f##*/}") || exit 112; : > "$f"; done; '
    'unset f v; exec "$@"'
)


def staging_stream(
    context_json: bytes, inputs: list[InputFile], secrets: dict[str, str] | None = None
) -> Iterator[bytes]:
    """A tar, streamed, of {context.json, inputs/..., outputs/} for `put_archive` into
    /picsellia (a volume: the root file system itself is read-only).

    Files are read in chunks: a multi-GB model is never held in memory. Call
    `check_inputs` first: errors raised while the HTTP body streams are less clear.
    """
    parts_list = check_inputs(inputs)
    yield _tar_header("inputs", tarfile.DIRTYPE, mode=0o755)
    yield _tar_header("outputs", tarfile.DIRTYPE, mode=0o777)
    if secrets:
        # Open to all for the moment between start and the script above: the image's
        # user may not be root, and even root has no CAP_DAC_OVERRIDE to empty them.
        yield _tar_header(STAGED_SECRETS, tarfile.DIRTYPE, mode=0o777)
        for name, value in secrets.items():
            data = value.encode() + b"\n"
            yield _tar_header(f"{STAGED_SECRETS}/{name}", tarfile.REGTYPE, len(data), 0o666)
            yield data + _pad(len(data))
    yield _tar_header("context.json", tarfile.REGTYPE, len(context_json), 0o644)
    yield context_json + _pad(len(context_json))
    made: set[tuple[str, ...]] = set()
    for f, parts in zip(inputs, parts_list, strict=True):
        for i in range(1, len(parts)):
            d = parts[:i]
            if d not in made:
                made.add(d)
                yield _tar_header("inputs/" + "/".join(d), tarfile.DIRTYPE, mode=0o755)
        with open(f.source, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            yield _tar_header("inputs/" + "/".join(parts), tarfile.REGTYPE, size, 0o644)
            left = size
            while left > 0:
                chunk = fh.read(min(_COPY_CHUNK, left))
                if not chunk:
                    raise ExecutorError(f"input {f.path!r}: {f.source} shrank while copying")
                left -= len(chunk)
                yield chunk
            yield _pad(size)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


async def run_in_daemon_thread(fn: Callable[[], T], name: str) -> T:
    """`fn()` in a new daemon thread; cancelling the caller abandons the thread."""
    token = anyio.lowlevel.current_token()
    done = anyio.Event()
    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as exc:
            outcome.append((False, exc))
        finally:
            with contextlib.suppress(Exception):
                anyio.from_thread.run_sync(done.set, token=token)

    threading.Thread(target=target, name=name[:60], daemon=True).start()
    await done.wait()
    ok, value = outcome[0]
    if ok:
        return cast(T, value)
    raise value


# ------------------------------------------------------------------------------ executor


class DockerExecutor:
    """Runs processings as containers on one Docker host (see module docstring)."""

    kind = "docker"

    def __init__(
        self,
        host: HostConfig,
        engine_id: str,
        *,
        default_memory: str | None = None,
        default_cpu: float | None = None,
        pids_limit: int | None = 512,
        log_max_size: str = "512m",
        log_max_files: int = 2,
        keep_failed: bool = False,
        pull_missing: bool = True,
        never_pull: tuple[str, ...] = ("picsellia-tui/",),
        connect_timeout: float = 30.0,
        exit_grace_s: float = 2.0,
        poll_s: float = 1.0,
        attach_logs: bool = True,
        client_factory: Callable[[HostConfig, float], docker.DockerClient] | None = None,
    ) -> None:
        self.host_config = host
        self.host = host.url
        self.host_name = host.name
        self.engine_id = engine_id
        self.default_memory = parse_memory(default_memory) if default_memory else None
        self.default_cpu = default_cpu
        self.pids_limit = pids_limit
        self.log_max_size = log_max_size
        self.log_max_files = log_max_files
        self.keep_failed = keep_failed
        self.pull_missing = pull_missing
        self.never_pull = never_pull
        self.connect_timeout = connect_timeout
        self.exit_grace_s = exit_grace_s
        self.poll_s = poll_s
        self._factory = client_factory or connect
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()
        self.attach_logs = attach_logs
        self._attached: dict[str, Any] = {}  # ref -> attach opened at start, unread
        self._forward: api_relay.SshForward | None = None  # the API's, to an ssh:// host
        self._forward_lock = threading.Lock()
        self._attach_lock = threading.Lock()
        self._ncpu: float | None = None

    def __repr__(self) -> str:
        return f"DockerExecutor(host={self.host!r}, engine_id={self.engine_id!r})"

    # -- plumbing

    def _client_sync(self) -> docker.DockerClient:
        with self._client_lock:
            if self._client is None:
                self._client = self._factory(self.host_config, self.connect_timeout)
            return self._client

    def _api(self) -> Any:
        return self._client_sync().api

    async def _call(self, fn: Callable[[], T], what: str, *, daemon: bool = False) -> T:
        """Run blocking `fn` in a thread; errors become one-line ExecutorErrors.

        `daemon=True` for calls that may block for minutes (wait): they run in a
        daemon thread of their own, abandoned on cancel, so they neither hold one of
        anyio's worker threads nor keep the process alive at exit.
        """

        def guarded() -> T:
            try:
                return fn()
            except ExecutorError:
                raise
            except Exception as exc:
                raise describe_error(exc, self.host, what) from None

        if daemon:
            return await run_in_daemon_thread(guarded, f"ptui-{what}")
        return await anyio.to_thread.run_sync(guarded)

    async def client(self) -> docker.DockerClient:
        """The connected docker-py client (connects on first use)."""
        return await self._call(self._client_sync, "connect")

    # -- images

    def _image_attrs(self, image: str, processing: str | None) -> dict[str, Any]:
        api = self._api()
        try:
            return dict(api.inspect_image(image))
        except docker.errors.NotFound:
            pass
        # Images of the app's own namespace are built locally, never pulled: a
        # look-alike pushed to Docker Hub must not run in their place.
        pullable = not image.startswith("sha256:") and not image.startswith(self.never_pull)
        if self.pull_missing and pullable:
            with contextlib.suppress(Exception):
                api.pull(image)
                return dict(api.inspect_image(image))
        raise ImageMissing(missing_image_message(image, self.host_name, processing))

    async def resolve_image(self, image: str, *, processing: str | None = None) -> str:
        """Repo digest if the image has one, else its id; pulls when absent.

        Raises ImageMissing ("image X is not on host H; build it with: picsellia-tui
        processings build NAME --host H"); pass `processing` to name NAME.
        """

        def work() -> str:
            return immutable_ref(self._image_attrs(image, processing), image)

        return await self._call(work, f"resolve image {image}")

    # -- start

    def _host_config(self, spec: RunSpec) -> dict[str, Any]:
        limits = spec.limits
        memory = limits.memory_bytes or self.default_memory
        cpu = limits.cpu or self.default_cpu
        pids = limits.pids if limits.pids is not None else self.pids_limit
        kwargs: dict[str, Any] = {
            "privileged": False,
            "security_opt": ["no-new-privileges"],
            "cap_drop": ["ALL"],
            "cap_add": list(limits.capabilities) or None,
            "read_only": not limits.writable_rootfs,
            # /picsellia is a volume of the container (put_archive can fill it on a
            # read-only root file system); /tmp is memory, like most tools expect.
            "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={TMP_SIZE}"}
            | (
                {SECRETS_DIR: "rw,nosuid,nodev,noexec,size=1m,mode=1777"}
                if spec.secret_files
                else {}
            ),
            "network_mode": "bridge" if limits.network else "none",
            "init": True,
            "auto_remove": False,
            "log_config": docker.types.LogConfig(
                type="json-file",
                config={"max-size": self.log_max_size, "max-file": str(self.log_max_files)},
            ),
        }
        if memory:
            kwargs["mem_limit"] = memory
            kwargs["memswap_limit"] = memory
        if cpu:
            kwargs["nano_cpus"] = int(min(cpu, self._host_cpus()) * 1e9)
        if pids:
            kwargs["pids_limit"] = pids
        if limits.gpu:
            kwargs["device_requests"] = [
                docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])
            ]
        return kwargs

    def _host_cpus(self) -> float:
        """The host's CPU count (Docker refuses a limit above it), asked once."""
        if self._ncpu is None:
            try:
                self._ncpu = float(self._api().info().get("NCPU") or 1)
            except Exception:  # the create that follows reports an unreachable host
                return 1.0
        return self._ncpu

    def _labels(self, spec: RunSpec) -> dict[str, str]:
        return {
            **spec.labels,
            LABEL_RUN: spec.run_id,
            LABEL_JOB: spec.job_id,
            LABEL_ENGINE: self.engine_id,
            LABEL_ATTEMPT: str(spec.attempt),
            LABEL_IMAGE: spec.image,
        }

    def _create(self, spec: RunSpec, image: dict[str, Any], relay: str | None = None) -> str:
        api = self._api()
        image_id = str(image["Id"])
        env = dict(spec.env)
        env["PICSELLIA_CONTEXT"] = CONTEXT_PATH
        entrypoint = list(spec.entrypoint) if spec.entrypoint else None
        command = list(spec.command) or None
        if spec.secret_files:
            env.update({f"{n}_FILE": f"{SECRETS_DIR}/{n}" for n in spec.secret_files})
            # The script runs first, then what Docker would have run.
            cfg = image.get("Config") or {}
            argv = entrypoint if entrypoint is not None else list(cfg.get("Entrypoint") or [])
            argv += command or ([] if entrypoint is not None else list(cfg.get("Cmd") or []))
            entrypoint = ["/bin/sh", "-c", SECRETS_SCRIPT, "picsellia-secrets"]
            command = argv
        config = self._host_config(spec)
        if relay is not None:
            # The relay's network namespace: loopback (and the bridge only when the
            # processing asks for network); the API is at 127.0.0.1 there.
            config["network_mode"] = f"container:{relay}"
            env["host"] = api_relay.relay_host_url()
        host_config = api.create_host_config(**config)
        for attempt in (1, 2):
            try:
                created = api.create_container(
                    image=image_id,
                    # None keeps the image's own CMD / ENTRYPOINT.
                    command=command,
                    entrypoint=entrypoint,
                    name=spec.name,
                    labels=self._labels(spec),
                    environment=env,
                    volumes=[ROOT_DIR],
                    host_config=host_config,
                    network_disabled=not spec.limits.network and relay is None,
                    detach=True,
                    tty=False,
                    stdin_open=False,
                )
                return str(created["Id"])
            except docker.errors.APIError as exc:
                if exc.status_code != 409 or attempt == 2:
                    raise
                # Name taken. A leftover of this very run that never started (crash
                # between create and start) is replaced; anything else is an error.
                try:
                    other = api.inspect_container(spec.name)
                except docker.errors.NotFound:
                    continue
                labels = other.get("Config", {}).get("Labels") or {}
                status = other.get("State", {}).get("Status")
                if labels.get(LABEL_RUN) == spec.run_id and status == "created":
                    api.remove_container(other["Id"], force=True, v=True)
                    continue
                raise ExecutorError(
                    f"a container named {spec.name} already exists on {self.host} "
                    f"({status}); use find() to reattach or remove it"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_sync(self, spec: RunSpec) -> str:
        check_inputs(spec.inputs)
        api = self._api()
        # Resolved (and named after its processing) before the start.
        image = self._image_attrs(spec.image, None)
        relay = self._start_relay(spec) if spec.api is not None else None
        try:
            cid = self._create(spec, image, relay)
        except BaseException:
            if relay is not None:
                with contextlib.suppress(Exception):
                    api_relay.stop_relays(api, spec.run_id, remove=True)
            raise
        attach: Any = None
        try:
            ok = api.put_archive(
                cid, ROOT_DIR, staging_stream(spec.context_json, spec.inputs, spec.secret_files)
            )
            if not ok:
                raise ExecutorError(f"staging inputs into {spec.name} failed on {self.host}")
            if self.attach_logs:
                attach = open_attach(api, cid)  # before start, as `docker run` does
            api.start(cid)
        except BaseException as exc:
            if attach is not None:
                with contextlib.suppress(Exception):
                    attach.close()
            with contextlib.suppress(Exception):
                api.remove_container(cid, force=True, v=True)
            if relay is not None:
                with contextlib.suppress(Exception):
                    api_relay.stop_relays(api, spec.run_id, remove=True)
            if isinstance(exc, docker.errors.APIError):
                text = str(exc.explanation or exc)
                if "could not select device driver" in text or "nvidia" in text.lower():
                    raise ExecutorError(
                        f"host {self.host_name} has no NVIDIA GPU runtime (Docker could not "
                        "select a GPU device driver); install the NVIDIA Container Toolkit "
                        "there or run this processing on a GPU host"
                    ) from None
            raise
        if attach is not None:
            with self._attach_lock:
                self._attached[cid] = attach
        return cid

    def _start_relay(self, spec: RunSpec) -> str:
        assert spec.api is not None
        api = self._api()
        base = str(getattr(api, "base_url", ""))
        if base == "http+docker://ssh":
            url = self.host if self.host.startswith("ssh://") else os.environ.get("DOCKER_HOST", "")
            with self._forward_lock:
                if self._forward is None:
                    argv = _SSHTarget.parse(url).argv("", self.connect_timeout)[:-1]
                    key = spec.labels.get("picsellia-tui.workspace", "ws")[:12]
                    self._forward = api_relay.SshForward(argv, api_relay.remote_dir_name(key))
                forward = self._forward
            socket_dir = forward.ensure(spec.api.socket_dir / api_relay.SOCKET_NAME)
        elif base.startswith("http+docker://"):
            socket_dir = str(spec.api.socket_dir)  # the daemon is on this machine
        else:
            raise ExecutorError(
                f"the local Picsellia API reaches containers on local and ssh:// Docker hosts "
                f"only, not on {self.host}"
            )
        api_relay.ensure_relay_image(api)
        labels = {k: v for k, v in spec.labels.items() if k != LABEL_RUN}
        return api_relay.start_relay(
            api,
            api_relay.RelaySpec(
                name=f"{spec.name}-api",
                run_key=spec.run_id,
                socket_dir=socket_dir,
                network=spec.limits.network,
                labels={**labels, LABEL_ENGINE: self.engine_id},
            ),
        )

    def _drop_attach(self, ref: str) -> None:
        with self._attach_lock:
            res = self._attached.pop(ref, None)
        if res is not None:
            abort_response(res)
            with contextlib.suppress(Exception):
                res.close()

    async def start(self, spec: RunSpec) -> str:
        """Create the container, stage context + inputs, start it. Returns its id (ref).

        On any failure after create, the container is removed again.
        """
        return await self._call(partial(self._start_sync, spec), f"start {spec.name}")

    # -- logs

    async def follow_log_batches(
        self, ref: str, since_ns: int | None = None, *, skip: dict[Stream, int] | None = None
    ) -> AsyncGenerator[list[LogLine], None]:
        """Like `follow_logs`, in batches: cheaper for a consumer that writes files.

        The first follow of a container this executor started, from the start
        (`since_ns` None, nothing to skip), reads the attach stream opened before
        its start: lines are stamped on receipt. Any other follow reads the logs
        API (Docker's stamps). `skip`: per stream, how many lines from the start
        of the log to leave out (already stored; the way to resume a log that was
        followed through attach, whose stamps are not Docker's).
        """
        with self._attach_lock:
            attach = self._attached.pop(ref, None)
        if attach is not None and (since_ns is not None or any((skip or {}).values())):
            abort_response(attach)
            with contextlib.suppress(Exception):
                attach.close()
            attach = None
        client = await self.client()
        source = LogSource(
            client.api, ref, host=self.host, exit_grace_s=self.exit_grace_s, poll_s=self.poll_s
        )
        batches = follow_container_log_batches(source, since_ns, skip=skip, attach=attach)
        async with contextlib.aclosing(batches):
            async for batch in batches:
                yield batch

    async def follow_logs(
        self, ref: str, since_ns: int | None = None, *, skip: dict[Stream, int] | None = None
    ) -> AsyncGenerator[LogLine, None]:
        """Lines with ts >= since_ns (inclusive), stdout/stderr apart, until the exit.

        Use `async with contextlib.aclosing(ex.follow_logs(ref)) as lines:` when you
        may stop early, so the reader thread stops at once.
        """
        batches = self.follow_log_batches(ref, since_ns, skip=skip)
        async with contextlib.aclosing(batches):
            async for batch in batches:
                for line in batch:
                    yield line

    # -- wait / inspect

    def _state_sync(self, ref: str) -> dict[str, Any] | None:
        try:
            return dict(self._api().inspect_container(ref))
        except docker.errors.NotFound:
            return None

    def _wait_once(self, ref: str) -> int | None:
        api = self._api()
        try:
            result = api.wait(ref, timeout=_WAIT_CHUNK_S)
        except docker.errors.NotFound:
            raise ContainerMissing(f"container {ref[:12]} is gone from {self.host}") from None
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
            if "timed out" in str(exc).lower() or isinstance(exc, requests.exceptions.ReadTimeout):
                return None
            raise
        return int(result.get("StatusCode", -1))

    async def wait(self, ref: str) -> int:
        """Exit code once the container has exited. Cancellable at any time.

        Raises ContainerMissing when it is gone, ExecutorError when it never started.
        """
        attrs = await self._call(partial(self._state_sync, ref), f"inspect {ref[:12]}")
        if attrs is None:
            raise ContainerMissing(f"container {ref[:12]} is gone from {self.host}")
        if attrs.get("State", {}).get("Status") == "created":
            raise ExecutorError(f"container {ref[:12]} was created but never started")
        while True:
            code = await self._call(
                partial(self._wait_once, ref), f"wait for {ref[:12]}", daemon=True
            )
            if code is not None:
                return code

    async def inspect(self, ref: str) -> ExecState:
        attrs = await self._call(partial(self._state_sync, ref), f"inspect {ref[:12]}")
        if attrs is None:
            return ExecState(status="missing", error="container is gone")
        state = attrs.get("State") or {}
        raw = str(state.get("Status") or "")
        status: ExecStatus
        if raw in ("running", "paused", "restarting"):
            status = "running"
        elif raw == "created":
            status = "created"
        else:  # exited, dead, removing
            status = "exited"
        error: str | None = None
        if state.get("OOMKilled"):
            error = "OOMKilled"
        elif state.get("Error"):
            error = one_line(state["Error"])
        elif raw == "dead":
            error = "container is dead"
        return ExecState(
            status=status,
            exit_code=int(state["ExitCode"]) if status == "exited" else None,
            started_ns=_ts_ns(state.get("StartedAt")),
            finished_ns=_ts_ns(state.get("FinishedAt")) if status == "exited" else None,
            error=error,
        )

    # -- outputs

    def _collect_sync(self, ref: str, dest: Path, quota_bytes: int) -> None:
        api = self._api()
        if self._state_sync(ref) is None:
            raise ContainerMissing(f"container {ref[:12]} is gone from {self.host}")
        try:
            res = stream_request(api, "GET", "/containers/{0}/archive", ref, {"path": OUTPUTS_DIR})
        except docker.errors.NotFound:
            raise OutputRejected(
                f"the run left no output folder ({OUTPUTS_DIR} was removed)"
            ) from None
        try:
            safe_extract(
                res.iter_content(chunk_size=_COPY_CHUNK),
                dest,
                quota_bytes,
                strip_prefix=PurePosixPath(OUTPUTS_DIR).name,
            )
        finally:
            res.close()

    async def collect_outputs(self, ref: str, dest: Path, quota_bytes: int) -> None:
        """Copy /picsellia/outputs into `dest` (must not exist). Raises OutputRejected."""
        await self._call(
            partial(self._collect_sync, ref, Path(dest), quota_bytes), f"outputs of {ref[:12]}"
        )

    # -- kill / remove / find

    def _kill_sync(self, ref: str, grace_s: float) -> None:
        try:
            self._api().stop(ref, timeout=max(0, math.ceil(grace_s)))
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if exc.status_code in (304, 409):  # already stopped / being removed
                return
            raise

    async def kill(self, ref: str, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after grace_s (rounded up to whole seconds). Idempotent."""
        await self._call(partial(self._kill_sync, ref, grace_s), f"stop {ref[:12]}")

    def _remove_sync(self, ref: str) -> None:
        self._drop_attach(ref)
        api = self._api()
        attrs = self._state_sync(ref)
        run_key = ((attrs or {}).get("Config", {}).get("Labels") or {}).get(LABEL_RUN)
        if run_key:
            api_relay.stop_relays(api, run_key, remove=True)
        if self.keep_failed:
            attrs = self._state_sync(ref)
            state = (attrs or {}).get("State") or {}
            if (
                attrs is not None
                and not state.get("Running")
                and (state.get("ExitCode") or state.get("OOMKilled"))
            ):
                return  # kept for debugging (docker logs / docker cp)
        try:
            api.remove_container(ref, force=True, v=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if exc.status_code == 409 and "already in progress" in str(exc.explanation):
                return
            raise

    async def remove(self, ref: str) -> None:
        """Remove the container (force). Idempotent. With keep_failed, failed runs stay."""
        await self._call(partial(self._remove_sync, ref), f"remove {ref[:12]}")

    def _find_sync(self, run_id: str) -> str | None:
        found = self._api().containers(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})
        if not found:
            return None
        newest = max(found, key=lambda c: int(c.get("Created") or 0))
        return str(newest["Id"])

    async def find(self, run_id: str) -> str | None:
        """The id of the run's container (running or not), by label; None if none."""
        return await self._call(partial(self._find_sync, run_id), f"find run {run_id}")

    def _list_sync(self) -> dict[str, str]:
        found = self._api().containers(
            all=True, filters={"label": f"{LABEL_ENGINE}={self.engine_id}"}
        )
        out: dict[str, str] = {}
        for c in sorted(found, key=lambda c: int(c.get("Created") or 0)):
            run_id = (c.get("Labels") or {}).get(LABEL_RUN)
            if run_id:
                out[str(run_id)] = str(c["Id"])
        return out

    async def list_runs(self) -> dict[str, str]:
        """run_id -> ref for every container of this engine on the host (reconciliation)."""
        return await self._call(self._list_sync, "list containers")

    async def aclose(self) -> None:
        if self._forward is not None:
            await anyio.to_thread.run_sync(self._forward.close)
        with self._attach_lock:
            refs = list(self._attached)
        for ref in refs:
            self._drop_attach(ref)
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            await anyio.to_thread.run_sync(client.close)
