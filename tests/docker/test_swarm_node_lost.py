"""A Swarm run whose task is lost mid-run ends `failed`, with the reason and the
lines received, and leaves no service behind (issue 15).

On the single-node test swarm, what can happen for real is tested for real: the
task's container killed behind Swarm's back. A node going away cannot happen on
one node (the node is the manager the engine talks to), so it is simulated at the
Docker API, as the daemon answers when a node is lost: the node is reported
`down` and the service log stream ends with the daemon's error frame "incomplete
log stream" (moby #37336). The run's service and task are real; only those two
answers are made up. Draining the node did not simulate it either: on Docker
20.10 a running job task stayed running on the drained node (tried by hand with a
plain job service, 4 s of drain, then the node made active again).
"""

from __future__ import annotations

import queue
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.executors import swarm_executor as sx
from picsellia_tui.engine.executors.docker_private import abort_response, clear_read_timeout
from picsellia_tui.storage.logfile.reader import LogReader
from tests.core.helpers import model_file
from tests.docker.test_swarm import _services, _settings, copy_image, swarm  # noqa: F401

pytestmark = [pytest.mark.anyio, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def swarm_settings(tmp_path: Path, docker_client: Any, swarm: str, copy_image: str) -> Any:  # noqa: F811
    # Small reservations: the shared test swarm's node updates re-count them and
    # reject a running task that no longer fits (moby #52652), a failure of its own.
    settings = _settings(tmp_path, docker_client)
    return settings.model_copy(update={"default_cpu": 0.25, "default_memory": "256m"})


def _lines(log_path: str) -> list[str]:
    return [r.text for r in LogReader(Path(log_path)).records(0, 1000)]


async def _until(what: str, check: Any, timeout: float = 60) -> Any:
    with anyio.fail_after(timeout):
        while True:
            value = await check()
            if value:
                return value
            await anyio.sleep(0.2)
    raise AssertionError(what)  # pragma: no cover


async def _started_with_lines(e: Engine, tmp_path: Path, lines: int) -> tuple[Any, Any]:
    """A test-copy run on the swarm that has printed its `lines` and now sleeps."""
    await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
    job = await e.launch("test-copy", "m/v1", {"lines": str(lines), "sleep": "120"})
    run_id = job.runs[0].id

    async def printed() -> Any:
        run = await e.run(run_id)
        assert run.status in ("pending", "running"), (run.status, run.error_summary)
        return run if f"line {lines - 1}" in _lines(run.log_path) else None

    try:
        return job, await _until("the run's lines stored", printed, timeout=120)
    except TimeoutError:
        run = await e.run(run_id)  # pending on a busy shared swarm says why
        raise AssertionError(f"run {run.status}: {run.error_summary}") from None


async def test_task_container_killed_behind_swarms_back_fails_with_the_lines(
    swarm_settings: Any, tmp_path: Path, docker_client: Any
) -> None:
    async with Engine(swarm_settings, supervise=True) as e:
        job, run = await _started_with_lines(e, tmp_path, 5)
        assert run.status == "running" and run.ref
        (container,) = docker_client.containers.list(
            filters={"label": f"com.docker.swarm.service.id={run.ref}"}
        )
        container.kill()  # SIGKILL, not through Swarm
        run = await e.wait_run(run.id)
        assert run.status == "failed" and run.exit_code == 137, run.error_summary
        assert run.error_summary is not None
        assert run.error_summary.startswith("exited with code 137"), run.error_summary
        assert "line 4" in run.error_summary  # the tail of what it printed
        assert [ln for ln in _lines(run.log_path) if ln.startswith("line ")] == [
            f"line {i}" for i in range(5)
        ]
        assert (await e.job(job.id)).runs[0].node == docker_client.info()["Name"]

        async def gone() -> bool:
            return not _services(docker_client, e.ws.workspace_id)

        await _until("the failed run's service removed", gone)


class _LogsCutByNodeLoss:
    """The service log response as the daemon gives it when the task's node is lost:
    the real stream's bytes until `lost` is set, then the daemon's error frame
    (stream 3) "incomplete log stream", then the end. The real body is read by a
    thread of its own so the cut can come while the task is quiet."""

    headers: dict[str, str] = {}  # read through iter_content
    raw = None

    def __init__(self, real: Any, lost: threading.Event) -> None:
        self._real = real
        self._lost = lost
        self._chunks: queue.Queue[bytes | None] = queue.Queue()
        clear_read_timeout(real)
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        real = self._real
        try:
            body: Any = (
                real.raw.read_chunked(decode_content=False)
                if real.headers.get("Transfer-Encoding") == "chunked"
                else real.iter_content(chunk_size=None)
            )
            for data in body:
                self._chunks.put(data)
        except Exception:
            pass
        self._chunks.put(None)

    def iter_content(self, chunk_size: int | None = None) -> Iterator[bytes]:
        while not self._lost.is_set():
            try:
                data = self._chunks.get(timeout=0.1)
            except queue.Empty:
                continue
            if data is None:
                return
            yield data
        message = b"incomplete log stream"
        yield struct.pack(">BxxxL", 3, len(message)) + message

    def close(self) -> None:
        abort_response(self._real)
        self._real.close()


async def test_node_lost_mid_run_fails_with_the_reason_and_the_lines_received(
    swarm_settings: Any, tmp_path: Path, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = threading.Event()
    real_node, real_stream = sx.SwarmExecutor._node_sync, sx.stream_request

    def node_sync(self: Any, node_id: str) -> dict[str, Any] | None:
        node = real_node(self, node_id)
        if node is not None and lost.is_set():
            node = {**node, "Status": {**(node.get("Status") or {}), "State": "down"}}
        return node

    def stream_request(api: Any, method: Any, path: str, *args: Any) -> Any:
        res = real_stream(api, method, path, *args)
        return _LogsCutByNodeLoss(res, lost) if path.endswith("/logs") else res

    monkeypatch.setattr(sx.SwarmExecutor, "_node_sync", node_sync)
    monkeypatch.setattr(sx, "stream_request", stream_request)
    async with Engine(swarm_settings, supervise=True) as e:
        job, run = await _started_with_lines(e, tmp_path, 6)
        lost.set()
        with anyio.fail_after(60):  # not hanging on the cut stream
            run = await e.wait_run(run.id)
        node = docker_client.info()["Name"]
        assert run.status == "failed", run.error_summary
        assert run.error_summary is not None
        reason = run.error_summary.splitlines()[0]
        assert reason == (
            f"lost the run: node {node} was lost while the run was running (node down)"
        ), run.error_summary
        assert "line 5" in run.error_summary  # the lines received, as the summary's tail
        assert [ln for ln in _lines(run.log_path) if ln.startswith("line ")] == [
            f"line {i}" for i in range(6)
        ]
        assert (await e.job(job.id)).runs[0].node == node

        async def gone() -> bool:
            return not _services(docker_client, e.ws.workspace_id)

        # Its service goes (keep_failed_containers is off): a lost node's task is
        # not left to come back when the node does.
        await _until("the lost run's service removed", gone, timeout=30)
