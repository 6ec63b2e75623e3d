"""The process executor: the processing's command as a local subprocess.

Same contract as a container, for machines without Docker and for fast tests.
The command runs under `process_shim` in its own session, so it survives the
engine; the run folder (the `ref`) holds everything needed to find it again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from picsellia_tui.engine.executors.archives import safe_extract
from picsellia_tui.engine.executors.base import (
    ExecState,
    ExecutorError,
    LogLine,
    OutputRejected,
    RunSpec,
)
from picsellia_tui.storage.logfile.record import Stream

POLL_S = 0.05
_STREAMS: dict[str, Stream] = {"o": "stdout", "e": "stderr"}


def _proc_start_time(pid: int) -> str | None:
    """Kernel start time of pid, to tell our shim from a recycled pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


class ProcessExecutor:
    kind = "process"

    def __init__(self, runs_root: Path, host: str = "local") -> None:
        self.runs_root = runs_root
        self.host = host
        runs_root.mkdir(parents=True, exist_ok=True, mode=0o700)

    async def resolve_image(self, image: str, *, processing: str | None = None) -> str:
        return image  # no image: the code runs from its folder

    def _dir(self, ref: str) -> Path:
        path = Path(ref)
        if path.parent != self.runs_root:
            raise ExecutorError(f"{ref} is not a run folder of this executor")
        return path

    async def start(self, spec: RunSpec) -> str:
        return await anyio.to_thread.run_sync(self._start, spec)

    def _start(self, spec: RunSpec) -> str:
        if spec.processing_dir is None or not spec.processing_dir.is_dir():
            raise ExecutorError(
                f"processing folder {spec.processing_dir} is missing: the process executor "
                "runs code from the processing's folder"
            )
        if not spec.command:
            raise ExecutorError(
                "this processing has no command: the process executor runs the processing's "
                "`command` (processing.toml); add one, or use the docker executor"
            )
        run_dir = self.runs_root / spec.name
        if run_dir.exists():  # a start that died half-way: begin again cleanly
            shutil.rmtree(run_dir)
        inputs, outputs = run_dir / "inputs", run_dir / "outputs"
        for d in (run_dir, inputs, outputs):
            d.mkdir(mode=0o700, parents=True)
        for f in spec.inputs:
            dest = (inputs / f.path).resolve()
            if not dest.is_relative_to(inputs.resolve()):
                raise ExecutorError(f"input path {f.path!r} escapes the inputs folder")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f.source, dest)
        context = json.loads(spec.context_json)
        context["paths"] = {"inputs": str(inputs), "outputs": str(outputs)}
        (run_dir / "context.json").write_text(json.dumps(context, indent=2))
        (run_dir / "labels.json").write_text(json.dumps(spec.labels))
        cmd = [sys.executable if c == "python" else c for c in spec.command]
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        env.update(spec.env)
        if spec.secret_files:
            # In the run folder (0700, inside the private data dir), each 0400.
            secrets = run_dir / "secrets"
            secrets.mkdir(mode=0o700)
            for name, value in spec.secret_files.items():
                fd = os.open(secrets / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
                with os.fdopen(fd, "w") as out:
                    out.write(value)
                env[f"{name}_FILE"] = str(secrets / name)
        env.update(
            PICSELLIA_CONTEXT=str(run_dir / "context.json"),
            PICSELLIA_CWD=str(spec.processing_dir),
            PYTHONUNBUFFERED="1",
        )
        if spec.api is not None:
            env["host"] = spec.api.tcp_url  # the engine's API on loopback
        shim_err = (run_dir / "shim.err").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "picsellia_tui.engine.executors.process_shim",
                str(run_dir),
                "--",
                *cmd,
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=shim_err,
            start_new_session=True,
        )
        shim_err.close()
        (run_dir / "pid").write_text(f"{proc.pid} {_proc_start_time(proc.pid) or ''}")
        # Reap it in the background when we are its parent, so no zombie is left.
        _reapers.append(proc)
        return str(run_dir)

    def _pid(self, run_dir: Path) -> int | None:
        """The shim's pid if that very process is still alive."""
        try:
            pid_s, _, started = (run_dir / "pid").read_text().partition(" ")
            pid = int(pid_s)
        except (OSError, ValueError):
            return None
        for p in list(_reapers):
            if p.poll() is not None:
                _reapers.remove(p)
        now_started = _proc_start_time(pid)
        if now_started is None or (started.strip() and now_started != started.strip()):
            return None
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return None
        return None if state == "Z" else pid

    async def follow_logs(self, ref: str, since_ns: int | None = None) -> AsyncIterator[LogLine]:
        run_dir = self._dir(ref)
        path = run_dir / "capture.log"
        offset = 0
        partial = b""
        while True:
            done = (run_dir / "exit.json").exists() or self._pid(run_dir) is None
            try:
                with path.open("rb") as f:
                    f.seek(offset)
                    data = f.read(4 << 20)
            except FileNotFoundError:
                data = b""
            if data:
                offset += len(data)
                data = partial + data
                *lines, partial = data.split(b"\n")
                for raw in lines:
                    ts_s, stream, text = raw.decode("utf-8").split(" ", 2)
                    ts = int(ts_s)
                    if since_ns is not None and ts < since_ns:
                        continue
                    yield LogLine(ts, _STREAMS[stream], json.loads(text))
                continue  # more may be there already
            if done:
                return
            await anyio.sleep(POLL_S)

    async def wait(self, ref: str) -> int:
        run_dir = self._dir(ref)
        while True:
            state = await self.inspect(ref)
            if state.status == "exited" and state.exit_code is not None:
                return state.exit_code
            if state.status == "missing":
                raise ExecutorError(f"run folder {run_dir} is gone")
            await anyio.sleep(POLL_S)

    async def inspect(self, ref: str) -> ExecState:
        run_dir = self._dir(ref)
        if not run_dir.is_dir():
            return ExecState("missing")
        try:
            info = json.loads((run_dir / "exit.json").read_text())
            return ExecState("exited", int(info["exit_code"]), finished_ns=int(info["finished_ns"]))
        except FileNotFoundError:
            pass
        if self._pid(run_dir) is not None:
            return ExecState("running")
        # The shim is gone without recording an exit: it was SIGKILLed with its group.
        if (run_dir / "exit.json").exists():  # it finished between our two looks
            return await self.inspect(ref)
        return ExecState("exited", 137, error="the process was killed before it could report")

    async def kill(self, ref: str, grace_s: float) -> None:
        run_dir = self._dir(ref)
        pid = self._pid(run_dir)
        if pid is None:
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if (run_dir / "exit.json").exists() or self._pid(run_dir) is None:
                break
            await anyio.sleep(POLL_S)
        # The command may be gone while its own children linger: sweep the group.
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    async def collect_outputs(self, ref: str, dest: Path, quota_bytes: int) -> None:
        run_dir = self._dir(ref)
        await anyio.to_thread.run_sync(self._collect, run_dir / "outputs", dest, quota_bytes)

    def _collect(self, outputs: Path, dest: Path, quota_bytes: int) -> None:
        if not outputs.is_dir():
            raise OutputRejected("the run left no outputs folder")
        # Through a tar, so the same checks as for a container's archive apply
        # (links, devices, escapes, quota) and nothing is half-written.
        with tempfile.TemporaryFile() as buf:
            with tarfile.open(fileobj=buf, mode="w") as tar:
                tar.add(outputs, arcname="outputs", recursive=True)
            buf.seek(0)
            safe_extract(buf, dest, quota_bytes, strip_prefix="outputs")

    async def remove(self, ref: str) -> None:
        run_dir = self._dir(ref)
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(run_dir, ignore_errors=True))

    async def find(self, run_id: str) -> str | None:
        for d in self.runs_root.glob("*"):
            try:
                labels = json.loads((d / "labels.json").read_text())
            except (OSError, ValueError):
                continue
            if labels.get("picsellia-tui.run_id") == run_id:
                return str(d)
        return None

    async def aclose(self) -> None:
        pass


_reapers: list[subprocess.Popen[bytes]] = []
