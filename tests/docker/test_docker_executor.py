"""DockerExecutor against a real dockerd (and, for the end-to-end run, through ssh)."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from picsellia_tui.engine.executors.base import (
    Executor,
    ExecutorError,
    ImageMissing,
    Limits,
    LogLine,
    OutputRejected,
    RunSpec,
)
from picsellia_tui.engine.executors.docker_executor import (
    LABEL_ENGINE,
    LABEL_JOB,
    LABEL_RUN,
    ContainerMissing,
    DockerExecutor,
)
from picsellia_tui.engine.hosts import HostConfig

SpecFactory = Callable[..., RunSpec]

pytestmark = [pytest.mark.docker, pytest.mark.anyio]


async def collect(ex: DockerExecutor, ref: str, since_ns: int | None = None) -> list[LogLine]:
    with anyio.fail_after(60):
        return [line async for line in ex.follow_logs(ref, since_ns)]


def texts(lines: list[LogLine], stream: str | None = None) -> list[str]:
    return [ln.text for ln in lines if stream is None or ln.stream == stream]


@pytest.mark.slow
async def test_run_end_to_end(
    any_executor: DockerExecutor, make_spec: SpecFactory, tmp_path: Path
) -> None:
    ex = any_executor
    assert isinstance(ex, Executor)
    spec = make_spec(
        {
            "lines": 3,
            "sleep_s": 0.1,
            "stderr": True,
            "big_line": 40_000,
            "partial": True,
            "tail": "TAIL-NO-NEWLINE",
            "outputs": True,
            "show_env": True,
        },
        inputs={"model.onnx": b"m" * 300, "eval/data.npz": b"d" * 7},
    )
    image = await ex.resolve_image(spec.image)
    assert image.startswith("sha256:")
    ref = await ex.start(spec)
    assert await ex.find(spec.run_id) == ref

    async with anyio.create_task_group() as tg:
        result: dict[str, Any] = {}

        async def waiter() -> None:
            result["code"] = await ex.wait(ref)

        tg.start_soon(waiter)
        lines = await collect(ex, ref)
    assert result["code"] == 0

    out = texts(lines, "stdout")
    err = texts(lines, "stderr")
    assert out[0] == "hello"
    assert [t for t in out if t.startswith("line ")] == ["line 0", "line 1", "line 2"]
    assert err == ["warn 0", "warn 1", "warn 2"]  # stderr kept apart, nothing else on it
    assert "x" * 40_000 in out  # > 16 KiB: docker split it, we rejoined it
    assert "part1-part2" in out  # written in two writes
    assert out[-1] == "TAIL-NO-NEWLINE"  # unterminated last line at exit
    assert "context: /picsellia/context.json" in out
    assert f"run_id: {spec.run_id}" in out
    assert "input: model.onnx 300" in out
    assert "input: eval/data.npz 7" in out
    assert "outputs writable: True" in out
    for stream in ("stdout", "stderr"):
        ts = [ln.ts_ns for ln in lines if ln.stream == stream]
        assert ts == sorted(ts)
        assert all(t > 1_600_000_000 * 10**9 for t in ts)

    state = await ex.inspect(ref)
    assert state.status == "exited" and state.exit_code == 0 and state.error is None
    assert state.started_ns and state.finished_ns and state.started_ns <= state.finished_ns

    dest = tmp_path / "outputs"
    await ex.collect_outputs(ref, dest, 10 * 1024 * 1024)
    got = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert got == ["model.bin", "result.json", "sub/dir/file.txt"]
    assert (dest / "model.bin").read_bytes() == b"\x00\x01" * 1000

    await ex.remove(ref)
    assert (await ex.inspect(ref)).status == "missing"
    await ex.remove(ref)  # idempotent
    assert await ex.find(spec.run_id) is None


async def test_first_line_visible_before_exit(
    executor: DockerExecutor, make_spec: SpecFactory
) -> None:
    ref = await executor.start(make_spec({"first_delay": 4, "lines": 0}))
    t0 = time.monotonic()
    with anyio.fail_after(30):
        async with contextlib.aclosing(executor.follow_logs(ref)) as lines:
            first = await lines.__anext__()
    assert first.text == "hello" and first.stream == "stdout"
    assert time.monotonic() - t0 < 3.5
    assert (await executor.inspect(ref)).status == "running"
    await executor.kill(ref, 0)


async def test_failing_script_traceback_on_stderr(
    executor: DockerExecutor, make_spec: SpecFactory
) -> None:
    ref = await executor.start(make_spec({"lines": 1, "fail": True}))
    lines = await collect(executor, ref)
    assert await executor.wait(ref) == 1
    err = texts(lines, "stderr")
    assert "Traceback (most recent call last):" in err
    assert err[-1] == "RuntimeError: boom: asked to fail"
    assert "Traceback (most recent call last):" not in texts(lines, "stdout")
    state = await executor.inspect(ref)
    assert state.status == "exited" and state.exit_code == 1


async def test_exit_code(executor: DockerExecutor, make_spec: SpecFactory) -> None:
    ref = await executor.start(make_spec({"lines": 0, "exit_code": 3}))
    assert await executor.wait(ref) == 3
    assert (await executor.inspect(ref)).exit_code == 3


async def test_kill_ends_within_grace_even_if_sigterm_is_ignored(
    any_executor: DockerExecutor, make_spec: SpecFactory
) -> None:
    executor = any_executor
    ref = await executor.start(make_spec({"lines": 0, "hang_s": 120, "ignore_term": True}))
    async with contextlib.aclosing(executor.follow_logs(ref)) as lines:
        assert (await lines.__anext__()).text == "hello"  # the script is up
    t0 = time.monotonic()
    await executor.kill(ref, 1.0)
    elapsed = time.monotonic() - t0
    assert elapsed < 6, elapsed
    assert await executor.wait(ref) == 137  # SIGKILL
    await executor.kill(ref, 1.0)  # idempotent on an exited container
    await executor.remove(ref)
    await executor.kill(ref, 1.0)  # and on a gone one


async def test_kill_sigterm_reaches_the_code(
    executor: DockerExecutor, make_spec: SpecFactory
) -> None:
    ref = await executor.start(make_spec({"lines": 0, "hang_s": 120}))
    async with contextlib.aclosing(executor.follow_logs(ref)) as lines:
        await lines.__anext__()
    t0 = time.monotonic()
    await executor.kill(ref, 20)
    assert time.monotonic() - t0 < 5  # did not need the 20 s grace: tini forwarded SIGTERM
    assert await executor.wait(ref) == 143


async def test_follow_logs_stops_when_cancelled(
    any_executor: DockerExecutor, make_spec: SpecFactory
) -> None:
    executor = any_executor
    ref = await executor.start(make_spec({"lines": 1000, "sleep_s": 0.05}))
    got: list[LogLine] = []
    with anyio.move_on_after(1.0):
        async for line in executor.follow_logs(ref):
            got.append(line)
    assert 1 < len(got) < 1000
    await executor.kill(ref, 0)


async def test_wait_is_cancellable_and_never_blocks_exit(
    executor: DockerExecutor, make_spec: SpecFactory, engine_id: str
) -> None:
    spec = make_spec({"lines": 0, "hang_s": 120})
    ref = await executor.start(spec)
    t0 = time.monotonic()
    with anyio.move_on_after(0.5):
        await executor.wait(ref)
    assert time.monotonic() - t0 < 2
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("ptui-"))
    # A process that quits while a wait and a log follow are in flight exits at once.
    script = f"""
import anyio, contextlib
from picsellia_tui.engine.hosts import HostConfig
from picsellia_tui.engine.executors.docker_executor import DockerExecutor

async def main():
    ex = DockerExecutor(HostConfig(), {engine_id!r})
    async with anyio.create_task_group() as tg:
        tg.start_soon(ex.wait, {ref!r})
        async def follow():
            async for _ in ex.follow_logs({ref!r}):
                pass
        tg.start_soon(follow)
        await anyio.sleep(1.0)
        tg.cancel_scope.cancel()
anyio.run(main)
"""
    t0 = time.monotonic()
    proc = await anyio.run_process([sys.executable, "-c", script], check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert time.monotonic() - t0 < 10
    assert (await executor.inspect(ref)).status == "running"  # the run outlives the app
    await executor.kill(ref, 0)


async def test_resume_since_is_inclusive(executor: DockerExecutor, make_spec: SpecFactory) -> None:
    ref = await executor.start(make_spec({"lines": 8, "sleep_s": 0.02}))
    live = await collect(executor, ref)  # through attach: stamped on receipt
    assert await executor.wait(ref) == 0
    everything = await collect(executor, ref)  # the logs API: Docker's stamps
    assert texts(everything) == texts(live)
    k = next(i for i, ln in enumerate(everything) if ln.text == "line 4")
    resumed = await collect(executor, ref, since_ns=everything[k].ts_ns)
    assert resumed == everything[k:]  # line k itself, then the rest
    assert await collect(executor, ref, since_ns=everything[-1].ts_ns) == everything[-1:]


async def test_resume_with_both_streams(executor: DockerExecutor, make_spec: SpecFactory) -> None:
    # Docker stamps stdout and stderr in separate goroutines, so across streams the
    # log is not strictly in timestamp order: `since` returns exactly the lines with
    # ts >= since_ns, in log order (which may include a line of the other stream
    # logged just before line k).
    ref = await executor.start(make_spec({"lines": 8, "sleep_s": 0.02, "stderr": True}))
    live = await collect(executor, ref)
    assert await executor.wait(ref) == 0
    everything = await collect(executor, ref)
    assert texts(everything, "stdout") == texts(live, "stdout")
    assert texts(everything, "stderr") == texts(live, "stderr")
    assert sorted(texts(everything)) == sorted(
        ["hello"] + [f"line {i}" for i in range(8)] + [f"warn {i}" for i in range(8)]
    )
    ts_k = next(ln.ts_ns for ln in everything if ln.text == "line 4")
    resumed = await collect(executor, ref, since_ns=ts_k)
    assert resumed == [ln for ln in everything if ln.ts_ns >= ts_k]


async def test_resume_while_running(executor: DockerExecutor, make_spec: SpecFactory) -> None:
    ref = await executor.start(make_spec({"lines": 30, "sleep_s": 0.05}))
    first: list[LogLine] = []
    async with contextlib.aclosing(executor.follow_logs(ref)) as lines:
        async for line in lines:
            first.append(line)
            if line.text == "line 5":
                break
    # Followed through attach (stamped on receipt): resumed by counting lines.
    with anyio.fail_after(60):
        rest = [ln async for ln in executor.follow_logs(ref, skip={"stdout": len(first)})]
    assert texts(first + rest) == ["hello"] + [f"line {i}" for i in range(30)]
    # Followed through the logs API: resumed by Docker's stamps.
    again: list[LogLine] = []
    async with contextlib.aclosing(executor.follow_logs(ref)) as lines:
        async for line in lines:
            again.append(line)
            if line.text == "line 5":
                break
    rest = await collect(executor, ref, since_ns=again[-1].ts_ns)
    assert rest[0] == again[-1]
    assert texts(again + rest[1:]) == ["hello"] + [f"line {i}" for i in range(30)]


async def test_attach_then_counts_give_docker_logs_lines(
    executor: DockerExecutor, make_spec: SpecFactory
) -> None:
    ref = await executor.start(make_spec({"lines": 40, "sleep_s": 0.01, "stderr": True}))
    live = await collect(executor, ref)
    assert await executor.wait(ref) == 0
    replay = await collect(executor, ref)
    for stream in ("stdout", "stderr"):
        assert texts(live, stream) == texts(replay, stream)
    n_out = len(texts(live, "stdout"))
    with anyio.fail_after(60):
        tail = [
            ln async for ln in executor.follow_logs(ref, skip={"stdout": n_out - 3, "stderr": 1})
        ]
    assert texts(tail, "stdout") == texts(live, "stdout")[-3:]
    assert texts(tail, "stderr") == texts(live, "stderr")[1:]


async def test_find_by_label_and_list_runs(
    executor: DockerExecutor, make_spec: SpecFactory
) -> None:
    assert await executor.find("no-such-run") is None
    spec = make_spec({"lines": 0})
    ref = await executor.start(spec)
    assert await executor.find(spec.run_id) == ref
    assert (await executor.list_runs())[spec.run_id] == ref
    await executor.wait(ref)
    assert await executor.find(spec.run_id) == ref  # exited containers too (all=True)


@pytest.mark.parametrize(
    ("hostile", "quota", "message"),
    [
        ("symlink", 10**7, "symbolic link"),
        ("hardlink", 10**7, "hard link"),
        ("fifo", 10**7, "fifo"),
        ("big", 1024 * 1024, "quota"),
        ("dirlink", 10**7, "symbolic link"),
    ],
)
async def test_hostile_outputs_refused(
    executor: DockerExecutor,
    make_spec: SpecFactory,
    tmp_path: Path,
    hostile: str,
    quota: int,
    message: str,
) -> None:
    ref = await executor.start(make_spec({"lines": 0, "hostile": hostile}))
    assert await executor.wait(ref) == 0
    dest = tmp_path / "collect" / "outputs"
    with pytest.raises(OutputRejected, match=message) as info:
        await executor.collect_outputs(ref, dest, quota)
    assert "\n" not in str(info.value)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no half-written temp folder left


async def test_confinement(
    executor: DockerExecutor, make_spec: SpecFactory, docker_client: Any, engine_id: str
) -> None:
    spec = make_spec(
        {"lines": 0, "check_network": True},
        limits=Limits(cpu=0.5, memory_bytes=256 * 1024 * 1024, pids=64),
    )
    ref = await executor.start(spec)
    lines = await collect(executor, ref)
    assert "network: none" in texts(lines)
    attrs = docker_client.api.inspect_container(ref)
    hc = attrs["HostConfig"]
    assert hc["Privileged"] is False
    assert "no-new-privileges" in (hc["SecurityOpt"] or [])
    assert hc["PidsLimit"] == 64
    assert hc["Memory"] == 256 * 1024 * 1024
    assert hc["NanoCpus"] == 500_000_000
    assert hc["NetworkMode"] == "none"
    assert hc["LogConfig"]["Type"] == "json-file"
    assert hc["LogConfig"]["Config"]["max-size"] == "512m"
    assert hc["CapDrop"] == ["ALL"] and not hc.get("CapAdd")
    assert hc["ReadonlyRootfs"] is True and "/tmp" in (hc.get("Tmpfs") or {})
    # No bind mount (no docker socket); /picsellia is the container's own volume.
    assert not hc.get("Binds")
    assert [(m["Type"], m["Destination"]) for m in attrs["Mounts"]] == [("volume", "/picsellia")]
    assert hc["Init"] is True
    labels = attrs["Config"]["Labels"]
    assert labels[LABEL_RUN] == spec.run_id
    assert labels[LABEL_JOB] == spec.job_id
    assert labels[LABEL_ENGINE] == engine_id
    assert labels["picsellia-tui.test-session"]
    assert "PICSELLIA_CONTEXT=/picsellia/context.json" in attrs["Config"]["Env"]
    assert attrs["Name"] == "/" + spec.name
    assert attrs["Image"] == await executor.resolve_image(spec.image)


async def test_out_of_memory_is_reported(executor: DockerExecutor, make_spec: SpecFactory) -> None:
    spec = make_spec({"lines": 0, "alloc_mb": 400}, limits=Limits(memory_bytes=64 * 1024 * 1024))
    ref = await executor.start(spec)
    lines = await collect(executor, ref)
    assert await executor.wait(ref) == 137
    assert "allocated 419430400" not in texts(lines)
    state = await executor.inspect(ref)
    assert state.status == "exited" and state.exit_code == 137 and state.error == "OOMKilled"


async def test_network_on_when_asked(
    executor: DockerExecutor, make_spec: SpecFactory, docker_client: Any
) -> None:
    ref = await executor.start(make_spec({"lines": 0}, limits=Limits(network=True)))
    attrs = docker_client.api.inspect_container(ref)
    assert attrs["HostConfig"]["NetworkMode"] == "bridge"  # never "host"
    await executor.wait(ref)


async def test_executor_defaults_apply(
    make_spec: SpecFactory, docker_client: Any, container_teardown: None, engine_id: str
) -> None:
    ex = DockerExecutor(
        HostConfig(), engine_id, default_memory="128m", default_cpu=0.25, pids_limit=99
    )
    try:
        ref = await ex.start(make_spec({"lines": 0}, limits=Limits(pids=None)))
        hc = docker_client.api.inspect_container(ref)["HostConfig"]
        assert hc["Memory"] == 128 * 1024 * 1024
        assert hc["NanoCpus"] == 250_000_000
        assert hc["PidsLimit"] == 99
        await ex.wait(ref)
    finally:
        await ex.aclose()


async def test_gpu_refused_without_nvidia_runtime(
    executor: DockerExecutor, make_spec: SpecFactory, docker_client: Any
) -> None:
    if "nvidia" in (docker_client.info().get("Runtimes") or {}):
        pytest.skip("this host has an NVIDIA runtime")
    spec = make_spec({"lines": 0}, limits=Limits(gpu=True))
    with pytest.raises(ExecutorError, match="GPU") as info:
        await executor.start(spec)
    assert "\n" not in str(info.value)
    assert await executor.find(spec.run_id) is None  # nothing left behind


async def test_missing_image(
    executor: DockerExecutor, make_spec: SpecFactory, engine_id: str
) -> None:
    ex = DockerExecutor(HostConfig(name="box"), engine_id, pull_missing=False)
    try:
        with pytest.raises(ImageMissing) as info:
            await ex.resolve_image("picsellia-tui-test/nope:0", processing="nope")
        assert str(info.value) == (
            "image picsellia-tui-test/nope:0 is not on host box; build it with: "
            "picsellia-tui processings build nope --host box"
        )
        with pytest.raises(ImageMissing):
            await ex.start(make_spec({}, image="picsellia-tui-test/nope:0"))
    finally:
        await ex.aclose()


async def test_missing_container(executor: DockerExecutor, tmp_path: Path) -> None:
    ghost = "0" * 64
    assert (await executor.inspect(ghost)).status == "missing"
    with pytest.raises(ContainerMissing):
        await executor.wait(ghost)
    with pytest.raises(ContainerMissing):
        await collect(executor, ghost)
    with pytest.raises(ContainerMissing):
        await executor.collect_outputs(ghost, tmp_path / "o", 100)
    await executor.kill(ghost, 1)
    await executor.remove(ghost)


async def test_same_name_leftover_is_replaced(
    executor: DockerExecutor, make_spec: SpecFactory, docker_client: Any, engine_id: str
) -> None:
    spec = make_spec({"lines": 0})
    # A crash between create and start left a container of this very run behind.
    docker_client.api.create_container(
        spec.image, name=spec.name, labels={LABEL_RUN: spec.run_id, LABEL_ENGINE: engine_id}
    )
    ref = await executor.start(spec)
    assert await executor.wait(ref) == 0
    other = make_spec({"lines": 0})
    clash = type(other)(**{**other.__dict__, "name": spec.name})
    with pytest.raises(ExecutorError, match="already exists"):
        await executor.start(clash)


@pytest.mark.slow
async def test_many_lines_throughput(executor: DockerExecutor, make_spec: SpecFactory) -> None:
    n = 200_000
    ref = await executor.start(make_spec({"lines": 0, "many": n}))
    t0 = time.monotonic()
    count = 0
    batches = 0
    last = ""
    with anyio.fail_after(120):
        async for batch in executor.follow_log_batches(ref):
            batches += 1
            count += len(batch)
            last = batch[-1].text
    elapsed = time.monotonic() - t0
    assert count == n + 1  # + "hello"
    assert last == f"m {n - 1}"
    assert batches < count / 5, (batches, count)  # batched, not one hop per line
    print(f"{n} lines in {elapsed:.2f}s, {batches} batches")


async def test_unreachable_host_is_one_line(tmp_path: Path, engine_id: str) -> None:
    ex = DockerExecutor(HostConfig(name="nowhere", url=f"unix://{tmp_path}/no.sock"), engine_id)
    with pytest.raises(ExecutorError) as info:
        await ex.find("x")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"unix://{tmp_path}/no.sock: ")
