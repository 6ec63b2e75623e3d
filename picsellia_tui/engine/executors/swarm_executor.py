"""The Swarm executor: one run = one service in `replicated-job` mode on a Docker
Swarm, placed by Swarm's own scheduler on any node that satisfies it.

The `ref` of a run is the service's id. The service: 1 replica, never restarted
(a job that ended is never run again; a re-run is a new service), labelled like the
Docker executor's containers (run, job, engine ids), cpu/memory as reservations and
limits, a GPU as a generic resource (`HostConfig.gpu_resource`), placement
constraints from the host's config (plus `gpu_constraints` for GPU processings).
Confined like the Docker executor's containers: never privileged (Swarm has no
such option), every capability dropped (a processing may ask a few back), a
read-only root filesystem unless the processing asks (`writable_rootfs`), the
image's own USER, `no-new-privileges` (set by the staging step on itself: the
service API of Engine 20.10 has no field for it), tini as PID 1, no host network,
pids limit. Secret parameters are Swarm secrets, files on the task's tmpfs
`/run/secrets/NAME` (0400), never in the service's spec.

No bind mount, no volume, no shared folder: `/picsellia` and `/tmp` are tmpfs. The
run's files travel through the engine's local API (runfiles.py): the task's command
is our staging step (swarm_stage.py, run with the image's `python3`), which fetches
context.json and the inputs, runs the processing's command, then sends
`/picsellia/outputs` back. Tasks reach the API at the host's `api_url`.

Status comes from the service's task: pending states (with Swarm's reason: no node
satisfies the constraints, insufficient resources, image not found) while it
waits; running; complete (exit 0) or failed (its exit code); a node lost makes the
run fail with that reason. Logs come from the service log API, which ends with
"incomplete log stream" when a node is gone: the follow then ends with the lines
it has instead of hanging.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import threading
import time
from collections.abc import AsyncGenerator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import docker
import docker.errors
import docker.types

from picsellia_tui.engine.executors import swarm_network
from picsellia_tui.engine.executors.archives import safe_extract
from picsellia_tui.engine.executors.base import (
    ExecState,
    ExecutorError,
    LogLine,
    OutputRejected,
    RunSpec,
)
from picsellia_tui.engine.executors.docker_executor import (
    LABEL_ATTEMPT,
    LABEL_ENGINE,
    LABEL_IMAGE,
    LABEL_JOB,
    LABEL_RUN,
    SECRETS_DIR,
    TMP_SIZE,
    DockerExecutor,
    check_inputs,
)
from picsellia_tui.engine.executors.docker_logs import (
    FrameDecoder,
    format_since,
    parse_docker_ts,
)
from picsellia_tui.engine.executors.docker_private import (
    abort_response,
    clear_read_timeout,
    stream_request,
)
from picsellia_tui.engine.hosts import HostConfig, one_line
from picsellia_tui.engine.picsellia_api.runfolder import OUTPUTS, write_run_files
from picsellia_tui.storage.domain import parse_memory
from picsellia_tui.storage.logfile.record import Stream

__all__ = ["LABEL_FILES", "SwarmExecutor", "service_spec_mounts"]

LABEL_FILES = "picsellia-tui.files_dir"
LABEL_WORKSPACE = "picsellia-tui.workspace"
STAGE_SOURCE = (Path(__file__).with_name("swarm_stage.py")).read_text()

# Task states (swarmkit): waiting ones, then running, then the ends.
_WAITING = {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"}
_ENDED = {"complete", "failed", "rejected", "shutdown", "orphaned", "remove"}
_CHUNK = 1024 * 1024
_KILLED_CODE = 143  # what a run removed on cancel reports (SIGTERM)


def service_spec_mounts(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The mounts of a service spec (tests check there is no bind or volume)."""
    return list(spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Mounts") or [])


class SwarmExecutor:
    """Runs processings as Swarm job services (see module docstring)."""

    kind = "swarm"

    def __init__(
        self,
        host: HostConfig,
        engine_id: str,
        *,
        default_memory: str | None = None,
        default_cpu: float | None = None,
        pids_limit: int | None = 512,
        poll_s: float = 0.5,
        stop_grace_s: float = 10.0,
        drain_s: float = 1.0,
        connect_timeout: float = 30.0,
        client_factory: Callable[[HostConfig, float], docker.DockerClient] | None = None,
    ) -> None:
        if host.kind != "swarm" or not host.api_url:
            raise ExecutorError(f"host {host.name} is not a swarm host with an api_url")
        # The Docker executor holds the connection, images and error wording.
        self._docker = DockerExecutor(
            host,
            engine_id,
            default_memory=default_memory,
            default_cpu=default_cpu,
            pids_limit=pids_limit,
            connect_timeout=connect_timeout,
            client_factory=client_factory,
        )
        self.host_config = host
        self.host = host.url
        self.host_name = host.name
        self.engine_id = engine_id
        self.api_url = host.api_url
        self.poll_s = poll_s
        self.stop_grace_s = stop_grace_s
        self.drain_s = drain_s
        self._killed: set[str] = set()  # refs removed by kill(): wait() reports 143
        self._files: dict[str, str] = {}  # ref -> files folder (kept after kill)
        self._runs: dict[str, str] = {}  # ref -> the run's key (its label)

    def __repr__(self) -> str:
        return f"SwarmExecutor(host={self.host!r}, engine_id={self.engine_id!r})"

    def _api(self) -> Any:
        return self._docker._api()

    async def _call(self, fn: Callable[[], Any], what: str, *, daemon: bool = False) -> Any:
        return await self._docker._call(fn, what, daemon=daemon)

    async def resolve_image(self, image: str, *, processing: str | None = None) -> str:
        """The image as the manager knows it (nodes must have it or pull it)."""
        return await self._docker.resolve_image(image, processing=processing)

    # -- start

    def _argv(self, spec: RunSpec, image_attrs: dict[str, Any]) -> list[str]:
        """What the processing runs (Docker's rules: an entrypoint given replaces
        the image's and its CMD; a command given replaces the CMD)."""
        config = image_attrs.get("Config") or {}
        entry = list(spec.entrypoint) if spec.entrypoint else list(config.get("Entrypoint") or [])
        if spec.command:
            cmd = list(spec.command)
        elif spec.entrypoint:
            cmd = []
        else:
            cmd = list(config.get("Cmd") or [])
        return entry + cmd

    def _task_template(
        self,
        spec: RunSpec,
        argv: list[str],
        files: str,
        secrets: dict[str, docker.types.SecretReference] | None = None,
        network: str | None = None,
    ) -> Any:
        """`network`: the workspace's runs network (a processing without network:
        its only one, where the API is at `swarm_network.task_api_url()`); None:
        the configured `networks` (or the node's bridge), the API at `api_url`."""
        assert spec.api is not None
        secrets = secrets or {}
        api_url = swarm_network.task_api_url() if network else self.api_url
        d = self._docker
        limits = spec.limits
        memory = limits.memory_bytes or d.default_memory
        cpu = limits.cpu or d.default_cpu
        env: dict[str, str | bytes | None] = {
            **spec.env,
            "PICSELLIA_CONTEXT": "/picsellia/context.json",
            "PTUI_FILES_URL": api_url,
            "PTUI_FILES_TOKEN": spec.api.token,
        }
        if "api_token" in spec.env:  # a processing written for the Picsellia API
            env["host"] = api_url.rstrip("/")
        mounts = [
            docker.types.Mount(target="/picsellia", source=None, type="tmpfs", tmpfs_mode=0o1777),
            docker.types.Mount(
                target="/tmp",
                source=None,
                type="tmpfs",
                tmpfs_mode=0o1777,
                tmpfs_size=parse_memory(TMP_SIZE),
            ),
        ]
        env.update({f"{n}_FILE": f"{SECRETS_DIR}/{n}" for n in secrets})
        container = docker.types.ContainerSpec(
            image=spec.image,
            command=["python3", "-c", STAGE_SOURCE],  # sys.argv: ["-c", *argv]
            args=argv,
            env=env,
            labels=self._labels(spec, files),
            mounts=mounts,
            # Confined like the Docker executor's containers: no capability but
            # those the processing asks for, a read-only root unless it asks, the
            # image's own USER (none given here). `no-new-privileges` has no field
            # in the service API of Engine 20.10: the staging step sets it on
            # itself (prctl), so the processing's whole process tree has it.
            read_only=not spec.limits.writable_rootfs,
            init=True,
            cap_drop=["ALL"],
            cap_add=list(spec.limits.capabilities) or None,
            secrets=list(secrets.values()) or None,
            stop_grace_period=int(self.stop_grace_s * 1e9),  # SIGTERM, then SIGKILL
        )
        generic: dict[str, int | str] | None = None
        if limits.gpu:
            generic = {self.host_config.gpu_resource: 1}
        reserve = self.host_config.reservations
        resources = docker.types.Resources(
            cpu_limit=int(cpu * 1e9) if cpu else None,
            mem_limit=memory or None,
            cpu_reservation=int(cpu * 1e9) if cpu and reserve else None,
            mem_reservation=(memory or None) if reserve else None,
            generic_resources=generic,
        )
        pids = limits.pids if limits.pids is not None else d.pids_limit
        if pids:
            resources["Limits"]["Pids"] = int(pids)
        constraints = list(self.host_config.constraints)
        if limits.gpu:
            constraints += self.host_config.gpu_constraints
        return docker.types.TaskTemplate(
            container_spec=container,
            resources=resources,
            restart_policy=docker.types.RestartPolicy(condition="none", max_attempts=0),
            placement=docker.types.Placement(constraints=constraints) if constraints else None,
            networks=[network] if network else (list(self.host_config.networks) or None),
        )

    def _make_secrets(
        self, spec: RunSpec, image_attrs: dict[str, Any]
    ) -> dict[str, docker.types.SecretReference]:
        """Secret parameters as Swarm secrets (encrypted in the swarm's store, never
        in `docker service inspect`), one per value, mounted by Swarm as a file on
        the task's tmpfs `/run/secrets/NAME`, 0400 and owned by the image's user
        (0444 when that user is a name we cannot turn into a uid)."""
        if not spec.secret_files:
            return {}
        api = self._api()
        uid, gid = _image_uid(image_attrs)
        refs: dict[str, docker.types.SecretReference] = {}
        for i, (name, value) in enumerate(sorted(spec.secret_files.items())):
            made = api.create_secret(
                name=f"{spec.name}-s{i}",
                data=value.encode(),
                labels={
                    LABEL_RUN: spec.run_id,
                    LABEL_ENGINE: self.engine_id,
                    LABEL_WORKSPACE: spec.labels.get(LABEL_WORKSPACE, ""),
                },
            )
            refs[name] = docker.types.SecretReference(
                str(made["ID"]),
                f"{spec.name}-s{i}",
                filename=name,
                uid=uid or "0",
                gid=gid or "0",
                mode=0o400 if uid is not None else 0o444,
            )
        return refs

    def _labels(self, spec: RunSpec, files: str) -> dict[str, str]:
        return {
            **spec.labels,
            LABEL_RUN: spec.run_id,
            LABEL_JOB: spec.job_id,
            LABEL_ENGINE: self.engine_id,
            LABEL_ATTEMPT: str(spec.attempt),
            LABEL_IMAGE: spec.image,
            LABEL_FILES: files,
        }

    def _create_sync(self, spec: RunSpec) -> str:
        if spec.api is None or spec.api.files_dir is None or not spec.api.token:
            raise ExecutorError("a swarm run needs the engine's API (its file channel)")
        check_inputs(spec.inputs)
        files = spec.api.files_dir
        write_run_files(files, spec.context_json, spec.inputs)
        api = self._api()
        attrs = self._docker._image_attrs(spec.image, spec.labels.get("picsellia-tui.processing"))
        argv = self._argv(spec, attrs)
        if not argv:
            raise ExecutorError(
                f"image {spec.image} has no command to run (set command in processing.toml)"
            )
        for old in api.services(filters={"label": f"{LABEL_RUN}={spec.run_id}"}):
            # A leftover of this very run (an engine that died starting it): a job
            # service cannot be restarted, so it goes and a new one is made.
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_service(old["ID"])
        _remove_secrets(api, spec.run_id)
        network: str | None = None
        try:
            if not spec.limits.network:
                workspace = spec.labels.get(LABEL_WORKSPACE, "")
                network = swarm_network.ensure(
                    api, workspace[:12], self.api_url, {LABEL_WORKSPACE: workspace}
                )
            secrets = self._make_secrets(spec, attrs)
            made = api.create_service(
                self._task_template(spec, argv, str(files), secrets, network),
                name=spec.name,
                labels=self._labels(spec, str(files)),
                mode=docker.types.ServiceMode("replicated-job", replicas=1, concurrency=1),
            )
        except BaseException:
            with contextlib.suppress(Exception):
                _remove_secrets(api, spec.run_id)
            raise
        ref = str(made["ID"])
        self._files[ref] = str(files)
        self._runs[ref] = spec.run_id
        return ref

    async def start(self, spec: RunSpec) -> str:
        """Create the job service, then wait while Swarm has no node for it, telling
        `spec.on_pending` why. Returns the service id once its task has started
        (or already ended). Cancelled while waiting: the service is removed."""
        ref: str = await self._call(partial(self._create_sync, spec), f"start {spec.name}")
        try:
            said: str | None = None
            while True:
                task = await self._call(partial(self._task_sync, ref), f"inspect {spec.name}")
                state = str((task or {}).get("Status", {}).get("State") or "new")
                if state not in _WAITING:
                    break
                why = _pending_reason(task)
                if why != said and spec.on_pending is not None:
                    said = why
                    await spec.on_pending(why)
                await anyio.sleep(self.poll_s)
            if said is not None and spec.on_pending is not None:
                await spec.on_pending(None)
        except BaseException:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self._call(partial(self._remove_sync, ref), f"remove {spec.name}")
            raise
        return ref

    # -- tasks and nodes

    def _task_sync(self, ref: str) -> dict[str, Any] | None:
        """The service's newest task, or None (no task yet, or no service)."""
        try:
            tasks: list[dict[str, Any]] = self._api().tasks(filters={"service": ref})
        except docker.errors.NotFound:
            return None
        if not tasks:
            return None
        newest: dict[str, Any] = max(tasks, key=lambda t: str(t.get("CreatedAt") or ""))
        return newest

    def _service_exists(self, ref: str) -> bool:
        try:
            self._api().inspect_service(ref)
            return True
        except docker.errors.NotFound:
            return False

    def _node_sync(self, node_id: str) -> dict[str, Any] | None:
        try:
            return dict(self._api().inspect_node(node_id))
        except docker.errors.NotFound:
            return None

    def _state_sync(self, ref: str) -> ExecState:
        task = self._task_sync(ref)
        if task is None:
            if ref in self._killed or not self._service_exists(ref):
                return ExecState(status="missing", error="the service is gone")
            return ExecState(status="created")
        status = task.get("Status") or {}
        state = str(status.get("State") or "")
        node = self._node_name(task)
        started = parse_docker_ts(str(status.get("Timestamp") or "").encode())
        if state in _WAITING:
            return ExecState(status="created", error=_pending_reason(task), node=node)
        if state == "running":
            lost = self._node_lost(task)
            if lost:
                return ExecState(status="exited", error=lost, node=node)
            return ExecState(status="running", started_ns=started, node=node)
        code = (status.get("ContainerStatus") or {}).get("ExitCode")
        err = status.get("Err") or None
        if state == "complete":
            return ExecState(status="exited", exit_code=0, finished_ns=started, node=node)
        if state == "failed" and (status.get("ContainerStatus") or {}).get("ContainerID"):
            return ExecState(
                status="exited", exit_code=int(code or 1), finished_ns=started, node=node
            )
        why = one_line(err or status.get("Message") or state)
        return ExecState(status="exited", error=f"task {state}: {why}", node=node)

    def _node_name(self, task: dict[str, Any]) -> str | None:
        node_id = task.get("NodeID")
        if not node_id:
            return None
        node = self._node_sync(str(node_id))
        if node is None:
            return str(node_id)[:12]
        return str((node.get("Description") or {}).get("Hostname") or node_id)

    def _node_lost(self, task: dict[str, Any]) -> str | None:
        node_id = task.get("NodeID")
        if not node_id:
            return None
        node = self._node_sync(str(node_id))
        if node is None:
            return f"node {str(node_id)[:12]} left the swarm while the run was running"
        state = (node.get("Status") or {}).get("State")
        if state in ("down", "disconnected"):
            name = (node.get("Description") or {}).get("Hostname") or node_id
            return f"node {name} was lost while the run was running (node {state})"
        return None

    async def inspect(self, ref: str) -> ExecState:
        state: ExecState = await self._call(partial(self._state_sync, ref), f"inspect {ref[:12]}")
        return state

    async def wait(self, ref: str) -> int:
        """The task's exit code once it has ended. A task that ended without one
        (rejected, shut down, its node lost) raises ExecutorError with why."""
        while True:
            state = await self.inspect(ref)
            if state.status == "missing":
                if ref in self._killed:
                    return _KILLED_CODE
                raise ExecutorError(f"service {ref[:12]} is gone from {self.host}")
            if state.status == "exited":
                if state.exit_code is not None:
                    return state.exit_code
                raise ExecutorError(state.error or "the task ended without an exit code")
            await anyio.sleep(self.poll_s)

    # -- logs

    def _read_logs(
        self, ref: str, since_ns: int | None, out: queue.Queue[Any], stop: threading.Event
    ) -> None:
        """Reader thread: frames of the service's log, as lines, into `out`; then
        None (the end), or the error that ended it."""
        params = {
            "follow": 1,
            "stdout": 1,
            "stderr": 1,
            "timestamps": 1,
            "since": format_since(since_ns) if since_ns else 0,
        }
        try:
            res = stream_request(self._api(), "GET", "/services/{0}/logs", ref, params)
        except docker.errors.NotFound:
            out.put(None)
            return
        except Exception as exc:
            out.put(exc)
            return
        out.put(("res", res))
        clear_read_timeout(res)
        held: dict[int, bytes] = {}
        try:
            frames = FrameDecoder()
            # The service log API answers chunked: urllib3 hands each chunk over as
            # it arrives (a raw socket read would see the chunk sizes).
            body: Any = (
                res.raw.read_chunked(decode_content=False)
                if res.headers.get("Transfer-Encoding") == "chunked"
                else res.iter_content(chunk_size=None)
            )
            for data in body:
                if stop.is_set():
                    break
                for stream_id, payload in frames.feed(data):
                    if stream_id == 3:
                        # The daemon's own error in the stream ("incomplete log
                        # stream" when a node is gone): the log ends with what it had.
                        raise ExecutorError(payload.decode("utf-8", "replace"))
                    buf = held.get(stream_id, b"") + payload
                    *lines, rest = buf.split(b"\n")
                    held[stream_id] = rest
                    for raw in lines:
                        out.put((stream_id, raw))
            for stream_id, rest in held.items():
                if rest:
                    out.put((stream_id, rest))
            out.put(None)
        except Exception as exc:
            out.put(None if stop.is_set() else exc)
        finally:
            with contextlib.suppress(Exception):
                res.close()

    async def follow_logs(
        self, ref: str, since_ns: int | None = None
    ) -> AsyncGenerator[LogLine, None]:
        """Lines with ts >= since_ns, until the task has ended and its log is drained.
        A log stream cut by a lost node ("incomplete log stream") ends the follow
        with the lines received; the run's status then says why."""
        out: queue.Queue[Any] = queue.Queue()
        stop = threading.Event()
        thread = threading.Thread(
            target=self._read_logs,
            args=(ref, since_ns, out, stop),
            daemon=True,
            name=f"ptui-swarm-logs-{ref[:8]}",
        )
        thread.start()
        res: Any = None
        ended_at: float | None = None
        last_line = time.monotonic()
        next_check = 0.0
        try:
            while True:
                try:
                    item = await anyio.to_thread.run_sync(partial(out.get, timeout=self.poll_s))
                except queue.Empty:
                    item = False
                if item is None:
                    return
                if isinstance(item, Exception):
                    text = str(item)
                    if "incomplete log stream" in text or ended_at is not None:
                        return
                    raise ExecutorError(f"logs of service {ref[:12]}: {one_line(text)}")
                if isinstance(item, tuple) and item[0] == "res":
                    res = item[1]
                    continue
                now = time.monotonic()
                if item is not False:
                    stream_id, raw = item
                    last_line = now
                    line = _log_line(stream_id, raw)
                    if line is not None and (since_ns is None or line.ts_ns >= since_ns):
                        yield line
                    continue
                if ended_at is None and now >= next_check:
                    next_check = now + self.poll_s
                    state = await self.inspect(ref)
                    if state.status in ("exited", "missing"):
                        ended_at = now
                if ended_at is not None and now - max(ended_at, last_line) >= self.drain_s:
                    return  # ended, and its log has been quiet since: drained
        finally:
            stop.set()
            if res is not None:
                abort_response(res)

    # -- outputs

    def _files_dir(self, ref: str) -> str | None:
        if ref not in self._files:
            self._learn(ref)
        return self._files.get(ref)

    def _run_key(self, ref: str) -> str | None:
        if ref not in self._runs:
            self._learn(ref)
        return self._runs.get(ref)

    def _learn(self, ref: str) -> None:
        """The run's files folder and run key, from the service's labels."""
        try:
            spec = self._api().inspect_service(ref)["Spec"]
        except docker.errors.NotFound:
            return
        labels = spec.get("Labels") or {}
        if labels.get(LABEL_FILES):
            self._files[ref] = str(labels[LABEL_FILES])
        if labels.get(LABEL_RUN):
            self._runs[ref] = str(labels[LABEL_RUN])

    def _collect_sync(self, ref: str, dest: Path, quota_bytes: int) -> None:
        files = self._files_dir(ref)
        if files is None:
            raise OutputRejected(f"service {ref[:12]} is gone: its outputs cannot be found")
        path = Path(files) / OUTPUTS
        if not path.is_file():
            raise OutputRejected("the run sent no outputs back (its staging step failed)")
        with open(path, "rb") as fh:
            safe_extract(iter(partial(fh.read, _CHUNK), b""), dest, quota_bytes, "outputs")

    async def collect_outputs(self, ref: str, dest: Path, quota_bytes: int) -> None:
        await self._call(
            partial(self._collect_sync, ref, Path(dest), quota_bytes), f"outputs of {ref[:12]}"
        )

    # -- kill / remove / find

    def _task_containers(self, ref: str) -> list[tuple[str, str]]:
        """(node id, container id) of the service's tasks."""
        found: list[tuple[str, str]] = []
        with contextlib.suppress(docker.errors.NotFound):
            for t in self._api().tasks(filters={"service": ref}):
                cid = ((t.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
                if cid:
                    found.append((str(t.get("NodeID") or ""), str(cid)))
        return found

    def _remove_sync(self, ref: str, grace_s: float = 10.0) -> None:
        """Remove the service and wait until its task's container is gone (removing
        a job service can leave its task running: moby #44312)."""
        api = self._api()
        self._files_dir(ref)
        containers = self._task_containers(ref)
        local = str((api.info().get("Swarm") or {}).get("NodeID") or "")
        for node, cid in containers:
            if node == local:
                # Removing a job service does not stop its running task (moby
                # #44312): stop it first (SIGTERM, SIGKILL after the grace).
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    api.stop(cid, timeout=max(0, math.ceil(grace_s)))
        run_key = self._run_key(ref)
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_service(ref)
        stop_by = time.monotonic() + grace_s + 10
        deadline = stop_by + 20
        for node, cid in containers:
            if node != local:
                continue  # another node's containers: only its own daemon sees them
            while True:
                try:
                    state = api.inspect_container(cid)["State"]
                except docker.errors.NotFound:
                    break  # gone: the only way out before the deadline
                if time.monotonic() >= deadline:
                    raise ExecutorError(
                        f"the container {cid[:12]} of service {ref[:12]} is still there "
                        f"({state.get('Status')}) after removing the service"
                    )
                if state.get("Status") != "removing" and (
                    not state.get("Running") or time.monotonic() >= stop_by
                ):
                    # Swarm keeps an ended task's container until it prunes its
                    # history, and may leave a running one behind (moby #44312).
                    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                        api.remove_container(cid, force=True)
                time.sleep(0.2)
        if run_key:
            _remove_secrets(api, run_key)

    async def kill(self, ref: str, grace_s: float) -> None:
        """Remove the service (SIGTERM, then SIGKILL after its grace period) and
        wait until its container is gone. Idempotent."""
        self._killed.add(ref)
        await self._call(partial(self._remove_sync, ref, grace_s), f"stop {ref[:12]}")

    async def remove(self, ref: str) -> None:
        """Remove the service and the run's files folder. Idempotent."""
        await self._call(partial(self._remove_sync, ref), f"remove {ref[:12]}")
        files = self._files.pop(ref, None)
        if files:
            await anyio.to_thread.run_sync(partial(_rmtree, Path(files)))

    def _find_sync(self, run_id: str) -> str | None:
        found = self._api().services(filters={"label": f"{LABEL_RUN}={run_id}"})
        if not found:
            return None
        newest = max(found, key=lambda s: str(s.get("CreatedAt") or ""))
        return str(newest["ID"])

    async def find(self, run_id: str) -> str | None:
        """The id of the run's service, by label; None if none."""
        found: str | None = await self._call(partial(self._find_sync, run_id), f"find {run_id}")
        return found

    def _list_sync(self) -> dict[str, str]:
        found = self._api().services(filters={"label": f"{LABEL_ENGINE}={self.engine_id}"})
        out: dict[str, str] = {}
        for s in sorted(found, key=lambda s: str(s.get("CreatedAt") or "")):
            run_id = ((s.get("Spec") or {}).get("Labels") or {}).get(LABEL_RUN)
            if run_id:
                out[str(run_id)] = str(s["ID"])
        return out

    async def list_runs(self) -> dict[str, str]:
        """run_id -> ref for every service of this engine (reconciliation)."""
        found: dict[str, str] = await self._call(self._list_sync, "list services")
        return found

    async def aclose(self) -> None:
        await self._docker.aclose()


def _remove_secrets(api: Any, run_key: str) -> None:
    """The run's Swarm secrets (none in use once its service is gone)."""
    for secret in api.secrets(filters={"label": f"{LABEL_RUN}={run_key}"}):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            api.remove_secret(secret["ID"])


def _image_uid(attrs: dict[str, Any]) -> tuple[str | None, str | None]:
    """(uid, gid) of the image's USER when numeric ("" is root); (None, None)
    for a user name (only the image's /etc/passwd knows its uid)."""
    user = str((attrs.get("Config") or {}).get("User") or "")
    if not user:
        return "0", "0"
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        return None, None
    return uid, gid or uid


def _pending_reason(task: dict[str, Any] | None) -> str:
    """Why a task waits, in Swarm's words ("no suitable node (scheduling constraints
    not satisfied on 1 node)", "insufficient resources on 1 node", ...)."""
    if not task:
        return "waiting for Swarm to schedule the task"
    status = task.get("Status") or {}
    state = str(status.get("State") or "pending")
    err = status.get("Err")
    if err:
        return f"waiting for a node: {one_line(err)}"
    msg = status.get("Message") or state
    return f"task {state}: {one_line(msg)}"


def _log_line(stream_id: int, raw: bytes) -> LogLine | None:
    stamp, _, text = raw.partition(b" ")
    ts = parse_docker_ts(stamp)
    if ts is None:
        return None
    stream: Stream = "stderr" if stream_id == 2 else "stdout"
    return LogLine(ts, stream, text.decode("utf-8", "replace"))


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(path)
