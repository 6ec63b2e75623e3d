"""Hostile runs, end to end (a real container, and the process executor): outputs
that try to escape the output folder or the quota, a broken result.json, odd file
names; a log with invalid UTF-8, NUL, control sequences (title, clear screen,
hyperlinks, bell, C1, bidi) and a 1 MB last line without newline; a container
printing 50k lines a second. Each refused with one line or neutralized; the log is
complete; nothing raw reaches a terminal; the database stays intact."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.logtext import sanitize, strip_ansi
from picsellia_tui.storage.logfile.reader import LogReader
from picsellia_tui.storage.logfile.search import export
from tests.reliability.helpers import (
    Tally,
    cli_env,
    config_file,
    docker_by_stream,
    docker_log_lines,
    history_problems,
    integrity,
    make_settings,
    message_problem,
    model_file,
    query,
    run_cli,
    stored_by_stream,
)

pytestmark = pytest.mark.anyio
AREA = "hostile input"
# What a terminal must never receive raw: C0 but tab/newline, DEL, C1, bidi overrides.
RAW_RX = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
SGR_ONLY_RX = re.compile(r"\x1b\[[0-9;:]*m")

# mode -> words the refusal must contain (lower case)
HOSTILE_OUTPUTS = {
    "abs-symlink": "link",
    "rel-symlink": "link",
    "dotdot-link": "link",
    "fifo": "fifo",
    "device": "fifo",  # mknod is refused in the container (no CAP_MKNOD): a fifo instead
    "big": "quota",
    "bad-result": "result.json",
    "huge-result": "result.json",
    "result-dir": "result.json",  # issue 16 item 8: was IsADirectoryError, run left open
    "result-deep": "result.json",  # was RecursionError
    "badname": "utf-8",
    "ctlname": "control characters",
}
# Neutralized rather than refused: Docker archives a lone hard link to a file outside
# the output folder as a plain file (a copy of a file of the container itself); no
# link is ever made on the host. Checked below.
PROCESS_SKIPS = {
    # Run as local code, these are the user's own powers, not an escape: the process
    # executor runs with the user's rights anyway (documented in the final report).
    "hardlink": "a local process may read what its user reads",
    "device": "as root on the host, mknod works: refused as a device instead",
}


async def _wait_final(e: Engine, run_ids: list[int], timeout: float) -> list[Any]:
    with anyio.fail_after(timeout):
        return [await e.wait_run(rid) for rid in run_ids]


@pytest.fixture(params=["process", "docker"])
def executor_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "docker":
        request.getfixturevalue("probe_image")
        request.node.add_marker(pytest.mark.docker)
    return str(request.param)


async def test_hostile_outputs_refused_blobs_and_versions_unchanged(
    tmp_path: Path, tally: Tally, executor_kind: str, workspace_containers: list[str]
) -> None:
    s = make_settings(tmp_path, executor=executor_kind, output_quota="1m", concurrency=4)
    blobs = s.data_dir / "blobs"
    modes = [m for m in HOSTILE_OUTPUTS if not (executor_kind == "process" and m in PROCESS_SKIPS)]
    async with Engine(s, supervise=True) as e:
        workspace_containers.append(e.ws.workspace_id)
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        before = sorted(p.name for p in blobs.rglob("*") if p.is_file())
        jobs = {m: await e.launch("rel-probe", "m/v1", {"out": m}) for m in modes}
        runs = await _wait_final(e, [j.runs[0].id for j in jobs.values()], 180)
        problems = []
        for mode, run in zip(modes, runs, strict=True):
            summary = run.error_summary or ""
            first = summary.splitlines()[0] if summary else ""
            ok = (
                run.status == "failed"
                and first.startswith("outputs refused:")
                and HOSTILE_OUTPUTS[mode] in first.lower()
                and message_problem(first) is None
                and run.exit_code == 0  # the code's own exit, recorded
            )
            klass = "hostile result.json" if mode.startswith("result-") else None
            tally.bad(AREA, ok, f"{executor_kind} outputs {mode}: {run.status} {first!r:.150}",
                      klass)  # fmt: skip
            if not ok:
                problems.append(f"{mode}: {run.status}: {first!r}")
        assert sorted(p.name for p in blobs.rglob("*") if p.is_file()) == before
        assert [v.ref for v in await e.versions()] == ["m/v1"]
        if executor_kind == "docker":
            # A hard link from the outputs to a file of the container: /picsellia is a
            # volume, another file system, so the link cannot even be made (before
            # the volume, Docker archived it as a plain copy; no link on the host).
            job = await e.launch("rel-probe", "m/v1", {"out": "hardlink"})
            (run,) = await _wait_final(e, [job.runs[0].id], 60)
            ok = run.status == "failed" and "cross-device" in (run.error_summary or "")
            if run.status == "succeeded":
                v = await e.version(str(run.output_version_id))
                f = next(f for f in v.files if f.path == "passwd")
                blob = e.ws.blobs.path_for(f.sha256)
                ok = not blob.is_symlink() and blob.read_bytes().startswith(b"root:")
                ok = ok and blob.stat().st_nlink == 1
            tally.bad(AREA, ok, "docker outputs hardlink: not neutralized")
            assert ok, (run.status, run.error_summary)
        # The app is still usable: a good run after all that.
        good = await e.launch("rel-probe", "m/v1", {"lines": 2})
        (run,) = await _wait_final(e, [good.runs[0].id], 60)
        assert run.status == "succeeded", run.error_summary
        if executor_kind == "docker":  # refused outputs do not leave containers behind
            with anyio.fail_after(30):
                while await e.executor("docker", "local").list_runs():  # type: ignore[attr-defined]
                    await anyio.sleep(0.2)
    assert not problems, problems
    assert not list((s.data_dir / "scratch").glob("outputs-*")), "partial outputs left behind"
    assert integrity(s.database_path) == "ok" and not history_problems(s.database_path)


HOSTILE_LOG_MARKERS = [
    "bad utf8", "nul", "title", "title2", "clear", "reset", "link", "bell", "color",
    "progress", "dcs", "c1", "bidi", "alt screen", "cursor",
]  # fmt: skip


async def test_hostile_log_bytes_stored_whole_and_never_raw_on_a_terminal(
    tmp_path: Path,
    tally: Tally,
    executor_kind: str,
    monkeypatch: pytest.MonkeyPatch,
    workspace_containers: list[str],
) -> None:
    from picsellia_tui.engine.executors.docker_executor import DockerExecutor

    kept: list[str] = []

    async def keep(self: Any, ref: str) -> None:  # compare with `docker logs` afterwards
        kept.append(ref)

    monkeypatch.setattr(DockerExecutor, "remove", keep)
    s = make_settings(tmp_path, executor=executor_kind)
    async with Engine(s, supervise=True) as e:
        workspace_containers.append(e.ws.workspace_id)
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("rel-probe", "m/v1", {"logs": "hostile", "lines": 2})
        (run,) = await _wait_final(e, [job.runs[0].id], 90)
        assert run.status == "succeeded", run.error_summary
    with LogReader(Path(run.log_path)) as reader:
        texts = [r.text for r in reader.records(0)]
    if executor_kind == "docker":
        import docker

        client = docker.from_env()
        try:
            # Same lines, none lost or doubled. Across stdout and stderr the order of
            # a line over 256K characters may differ (it waits for its stream's
            # next line so a secret cannot straddle the cut): compare as multisets.
            assert sorted(texts) == sorted(docker_log_lines(client.containers.get(kept[0])))
        finally:
            client.close()
    # Every hostile line arrived, each as one record; the 1 MB line whole.
    for marker in HOSTILE_LOG_MARKERS:
        assert any(t.startswith(marker + " ") for t in texts), marker
    assert "Z" * 1_000_000 in texts, "the 1 MB line is not stored whole"
    assert "nul \x00 byte" in texts
    assert any(t.startswith("bad utf8 \ufffd") for t in texts)
    problems = []
    for t in texts:
        shown = SGR_ONLY_RX.sub("", sanitize(t, keep_colors=True))
        plain = strip_ansi(t)
        if RAW_RX.search(shown) or RAW_RX.search(plain):
            problems.append(f"{t[:40]!r} -> {shown[:60]!r}")
    for marker in HOSTILE_LOG_MARKERS:
        tally.bad(AREA, not any(p.startswith(repr(marker)[:-1]) for p in problems), marker)
    assert not problems, problems
    assert sanitize("color \x1b[31mred\x1b[0m after") == "color \x1b[31mred\x1b[0m after"
    # Export and the command line: plain text only.
    out = tmp_path / "export.txt"
    with LogReader(Path(run.log_path)) as reader:
        assert export(reader, out, clean=strip_ansi) == len(texts)
    assert not RAW_RX.search(out.read_text("utf-8").replace("\n", "")), "raw control in export"
    cfg = config_file(s, tmp_path / "config.toml")
    cli = run_cli(["--config", str(cfg), "jobs", "logs", str(job.id)], env=cli_env())
    assert cli.returncode == 0, cli.stderr
    assert not RAW_RX.search(cli.stdout.replace("\n", "")), "raw control from `jobs logs`"
    assert "pwned-title" not in cli.stdout and "evil.example" not in cli.stdout
    tally.bad(AREA, True, "1 MB line without newline")
    assert integrity(s.database_path) == "ok"


@pytest.mark.docker
@pytest.mark.slow
async def test_a_container_printing_50k_lines_a_second_loses_nothing(
    tmp_path: Path,
    tally: Tally,
    probe_image: str,
    docker_client: Any,
    workspace_containers: list[str],
) -> None:
    s = make_settings(tmp_path, executor="docker", keep_failed_containers=True)
    async with Engine(s, supervise=True) as e:
        workspace_containers.append(e.ws.workspace_id)
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        # fail=true keeps the container: its `docker logs` is the reference.
        job = await e.launch(
            "rel-probe", "m/v1", {"logs": "flood", "rate": 50000, "lines": 0, "fail": True}
        )
        (run,) = await _wait_final(e, [job.runs[0].id], 180)
        assert run.status == "failed" and run.exit_code == 1, run.error_summary
        with LogReader(Path(run.log_path)) as reader:
            ours = [r.text for r in reader.records(0)]
    (c,) = docker_client.containers.list(
        all=True, filters={"label": f"picsellia-tui.workspace={e.ws.workspace_id}"}
    )
    theirs = docker_log_lines(c)
    flood = [t for t in ours if t.startswith("flood ") and not t.startswith("flood done")]
    assert flood == [f"flood {i}" for i in range(150_000)]
    done = next(t for t in ours if t.startswith("flood done"))
    assert len(ours) == len(theirs), f"{len(ours)} stored, {len(theirs)} in docker logs"
    assert stored_by_stream(run.log_path) == docker_by_stream(c)
    tally.fault("crashes", 0)
    tally.bad(AREA, True)
    rate = 150_000 / float(done.split(" in ")[1].rstrip("s"))
    tally.note(AREA, f"log flood: 150000 lines at {rate:,.0f} lines/s, none lost")
    assert query(s.database_path, "select count(*) from run where status='failed'")[0][0] == 1


async def test_a_backlog_slower_than_the_drain_grace_is_not_cut(
    tmp_path: Path, tally: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the exit, a stream still delivering its backlog (a flood written faster
    than it is stored) is left to drain: not cut after a fixed grace, replayed, or
    abandoned after a fixed minute with lines still unread."""
    import time as _time

    from picsellia_tui.engine import capture
    from picsellia_tui.engine.executors.process import ProcessExecutor
    from picsellia_tui.storage.logfile.writer import LogWriter

    monkeypatch.setattr(capture, "DRAIN_GRACE_S", 0.5)
    monkeypatch.setattr(capture, "REPLAY_IDLE_S", 1.0, raising=False)
    orig_append = LogWriter.append

    def slow_append(self: Any, lines: Any) -> int:
        lines = list(lines)
        _time.sleep(0.3 + 2e-5 * len(lines))  # a slow disk
        return orig_append(self, lines)

    monkeypatch.setattr(LogWriter, "append", slow_append)
    opened: list[int | None] = []
    orig_follow = ProcessExecutor.follow_logs

    def follow(self: Any, ref: str, since_ns: int | None = None) -> Any:
        opened.append(since_ns)
        return orig_follow(self, ref, since_ns)

    monkeypatch.setattr(ProcessExecutor, "follow_logs", follow)
    s = make_settings(tmp_path)
    async with Engine(s, supervise=True) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("rel-probe", "m/v1", {"lines": 120000})
        (run,) = await _wait_final(e, [job.runs[0].id], 120)
    assert run.status == "succeeded", run.error_summary
    with LogReader(Path(run.log_path)) as reader:
        out = [r.text for r in reader.records(0) if r.stream == "stdout"]
    assert [t for t in out if t.startswith("line ")] == [f"line {i}" for i in range(120000)]
    assert len(opened) == 1, f"the log stream was opened {len(opened)} times"
    tally.fault("crashes")  # a slow disk under a flood
    tally.hit("crashes")
    tally.survived("crashes")


async def test_tui_shows_a_hostile_log_without_raw_controls_and_survives(
    tmp_path: Path, tally: Tally
) -> None:
    """The log pane on a log full of control sequences, broken bytes and a 1 MB
    line: nothing raw on screen (title, clear, hyperlink, bell), the app responsive."""
    from textual.widgets import TabbedContent

    from picsellia_tui.tui.app import AppEngineHandle, PicselliaApp
    from picsellia_tui.tui.widgets.log_view import LogView

    handle = AppEngineHandle(make_settings(tmp_path), supervise=True)
    handle.start()
    try:
        f = model_file(tmp_path)
        handle.call(lambda e: e.import_version("m", "v1", [f], framework="onnx"))
        job = handle.call(lambda e: e.launch("rel-probe", "m/v1", {"logs": "hostile", "lines": 1}))
        run = handle.call(lambda e: e.wait_run(job.runs[0].id))
        assert run.status == "succeeded"
        app = PicselliaApp(handle, frozen_time=True)
        async with app.run_test(size=(120, 36)) as pilot:

            def screen() -> str:
                strips = app.screen._compositor.render_strips()
                return "\n".join("".join(seg.text for seg in strip) for strip in strips)

            for _ in range(200):
                if app.screen.query(TabbedContent):
                    break
                await pilot.pause(0.05)
            await pilot.press("3")
            log = app.screen.query_one(LogView)
            for _ in range(300):
                if log.reader is not None and len(log.reader) > 10:
                    break
                await pilot.pause(0.05)
            await pilot.press("enter", "g")  # into the log, from the top
            seen = []
            for keys in ((), ("w",), ("t",), ("G",), ("w",), ("g",)):
                await pilot.press(*keys)
                await pilot.pause(0.3)
                text = screen()
                seen.append(text)
                bad = RAW_RX.search(text) or "\x1b" in text
                assert not bad, f"raw control on screen after {keys}: {bad}"
            assert any("progress 100%" in t for t in seen), seen[0]
            assert all("pwned-title" not in t for t in seen)
            assert app.is_running
        tally.bad(AREA, True, "TUI on a hostile log")
    finally:
        handle.stop()
