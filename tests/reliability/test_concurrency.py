"""Concurrency: three engines (separate processes) on one database launching,
re-running and cancelling at random, and cancels that land while a run is being
started. At most one active run per job at any time, every run supervised exactly
once, no lost or doubled status change, no `database is locked` reaching a user."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import anyio
import pytest

from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.executors.docker_executor import DockerExecutor
from picsellia_tui.engine.executors.process import ProcessExecutor
from picsellia_tui.storage.logfile.reader import LogReader
from tests.reliability.helpers import (
    Tally,
    cli_env,
    config_file,
    expected_stderr_head,
    expected_stdout,
    history_problems,
    integrity,
    lines_lost,
    make_settings,
    model_file,
    query,
    settings_json,
    versions_of_job,
    worker_cmd,
)

pytestmark = pytest.mark.anyio
AREA = "concurrency"
CLI = Path(sys.executable).with_name("picsellia-tui")
SEED = int(os.environ.get("RELIABILITY_SEED", "7"))


async def _three_engines(
    tmp: Path, s: Any, *, launches: int, reruns: int, cancels: int, timeout: float
) -> list[dict[str, Any]]:
    """Run three engine processes doing random operations until every run is final;
    returns every operation's outcome."""
    go, stop = tmp / "go", tmp / "stop"
    cli_problems: list[str] = []
    procs = []
    per = [launches // 3 + (1 if i < launches % 3 else 0) for i in range(3)]
    for i in range(3):
        cfg = {
            "settings": settings_json(s),
            "engine_id": f"engine-{i}",
            "ops": {
                "seed": SEED * 10 + i,
                "launches": per[i],
                "reruns": reruns // 3,
                "cancels": cancels // 3,
                "go": str(go),
                "out": str(tmp / f"ops-{i}.jsonl"),
            },
            "record": str(tmp / f"record-{i}.jsonl"),
            "stop": str(stop),
        }
        log = (tmp / f"engine-{i}.log").open("wb")
        procs.append(
            (subprocess.Popen(worker_cmd(cfg, tmp / f"cfg-{i}.json"), stdout=log, stderr=log), log)
        )
    cfg_file = config_file(s, tmp / "config.toml")
    clis: list[subprocess.Popen[str]] = []
    try:
        await anyio.sleep(2.0)  # all three open the workspace and wait for `go`
        go.touch()
        with anyio.fail_after(timeout):
            while True:
                # The command line reads the database meanwhile, once job 1 exists
                # (a light `jobs show 1` started before the first launch says "no job 1").
                if len(clis) < 6 and query(s.database_path, "select count(*) from job")[0][0]:
                    args = ["jobs", "list", "--json"] if len(clis) % 2 else ["jobs", "show", "1"]
                    clis.append(
                        subprocess.Popen(
                            [str(CLI), "--config", str(cfg_file), *args],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            text=True,
                            env=cli_env(),
                        )
                    )
                done = all(
                    (tmp / f"ops-{i}.jsonl").exists()
                    and '"finished"' in (tmp / f"ops-{i}.jsonl").read_text()
                    for i in range(3)
                )
                active = query(
                    s.database_path,
                    "select count(*) from run where status in ('pending','running')",
                )[0][0]
                if done and not active:
                    break
                for p, _ in procs:
                    assert p.poll() is None, "an engine process died"
                await anyio.sleep(0.3)
        stop.touch()
        for p, _ in procs:
            p.wait(timeout=60)
        for c in clis:
            _, err = c.communicate(timeout=120)
            if c.returncode != 0 or "locked" in err or "Traceback" in err:
                cli_problems.append(f"CLI exited {c.returncode}: {err.strip()[:300]}")
    finally:
        for c in clis:
            if c.poll() is None:
                c.kill()
                c.communicate()
        for p, log in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()
    ops: list[dict[str, Any]] = [{"op": "cli", "problem": p} for p in cli_problems]
    for i in range(3):
        ops += [json.loads(line) for line in (tmp / f"ops-{i}.jsonl").read_text().splitlines()]
    return ops


def _check_everything(
    tmp: Path, s: Any, ops: list[dict[str, Any]], tally: Tally, *, logs: bool
) -> list[str]:
    db = s.database_path
    problems: list[str] = []
    # -- operations: refused ones say why in one line; nothing crashed or was locked
    for op in ops:
        if op["op"] == "cli":
            problems.append(op["problem"])
            continue
        if op["op"] == "finished" or op.get("skipped"):
            continue
        msg = op.get("msg", "")
        if op.get("crash"):
            problems.append(f"{op['engine']} {op['op']} crashed: {op['crash']}: {msg}")
        if "locked" in msg or "busy" in msg:
            problems.append(f"{op['engine']} {op['op']}: {msg}")
        if op.get("refused") and op["refused"] not in ("RerunRefused", "EngineError"):
            problems.append(f"{op['engine']} {op['op']} refused oddly: {op['refused']}: {msg}")
    for i in range(3):
        text = (tmp / f"engine-{i}.log").read_text()
        for bad in ("Traceback", "database is locked", "failed"):
            if bad in text:
                problems.append(f"engine-{i} logged {bad!r}: {text[-1500:]}")
                break
    # -- history: replayed in commit order (helpers.history_problems)
    problems += history_problems(db)
    # -- supervision: one engine started each run that ran, exactly once
    starts: Counter[int] = Counter()
    supervisors: dict[int, list[str]] = defaultdict(list)
    for i in range(3):
        path = tmp / f"record-{i}.jsonl"
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row["ev"] == "start":
                starts[row["run"]] += 1
            else:
                supervisors[row["run"]].append(row["engine"])
    runs = query(
        db,
        "select run.id, run.job_id, run.attempt, run.status, run.exit_code, run.log_path,"
        " run.output_version_id, job.parameters from run join job on job.id = run.job_id",
    )
    events: dict[int, list[tuple[str, str | None]]] = defaultdict(list)
    for rid, status, engine in query(
        db, "select run_id, status, engine_id from run_event order by id"
    ):
        events[rid].append((status, engine))
    succeeded = 0
    for rid, jid, attempt, status, code, log_path, out_version, params_json in runs:
        ran = any(st == "running" for st, _ in events[rid])
        if ran and starts[rid] != 1:
            problems.append(f"run {rid}: started {starts[rid]} times")
        if not ran and starts[rid] > 0 and status != "killed":
            problems.append(f"run {rid}: started but never recorded running ({status})")
        if len(supervisors[rid]) > 1 or (ran and not supervisors[rid]):
            problems.append(
                f"run {rid}: supervised {len(supervisors[rid])} times: {supervisors[rid]}"
            )
        if ran:
            # the engine that recorded `running` recorded its end too
            owners = {e for st, e in events[rid] if st != "pending"}
            if len(owners) != 1:
                problems.append(f"run {rid}: status changes by {sorted(map(str, owners))}")
        params = json.loads(params_json)
        if status == "succeeded":
            succeeded += 1
            if code != 0 or out_version is None:
                problems.append(f"run {rid}: succeeded with exit {code}, version {out_version}")
        if status == "failed" and not params.get("fail"):
            problems.append(f"run {rid} failed though asked to succeed")
        if status == "succeeded" and params.get("fail"):
            problems.append(f"run {rid} succeeded though asked to fail")
        if logs and status in ("succeeded", "failed"):
            with LogReader(Path(log_path)) as r:
                recs = r.records(0)
            out = [x.text for x in recs if x.stream == "stdout"]
            err = [x.text for x in recs if x.stream == "stderr"]
            want_out = expected_stdout(jid, rid, attempt, params["lines"], done=not params["fail"])
            want_err = expected_stderr_head(params["lines"])
            lost = lines_lost(out, want_out) + lines_lost(err[: len(want_err)], want_err)
            tally.lost(AREA, lost)
            if out != want_out or err[: len(want_err)] != want_err:
                problems.append(f"run {rid}: log differs from the process's output ({lost} lines)")
    for (jid,) in query(db, "select id from job"):
        n = versions_of_job(db, jid)
        ok = query(db, "select count(*) from run where job_id=? and status='succeeded'", jid)[0][0]
        if n != ok:
            problems.append(f"job {jid}: {n} versions for {ok} succeeded runs")
    if query(db, "select count(*) from model_version")[0][0] != 1 + succeeded:
        problems.append("version count does not match succeeded runs")
    if integrity(db) != "ok":
        problems.append("integrity_check failed")
    return problems


@pytest.mark.slow
async def test_three_engines_fifty_launches_process_executor(tmp_path: Path, tally: Tally) -> None:
    s = make_settings(tmp_path, concurrency=6, heartbeat_seconds=1.0, lease_timeout_seconds=10.0)
    async with Engine(s) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
    start = time.monotonic()
    ops = await _three_engines(tmp_path, s, launches=50, reruns=30, cancels=15, timeout=240)
    problems = _check_everything(tmp_path, s, ops, tally, logs=True)
    n_runs = query(s.database_path, "select count(*) from run")[0][0]
    launched = sum(1 for o in ops if o["op"] == "launch" and o.get("ok"))
    refused = [o for o in ops if o.get("refused")]
    tally.fault(AREA, sum(1 for o in ops if o["op"] not in ("finished", "cli")))  # each may race
    tally.hit(AREA, n_runs)
    tally.survived(AREA, n_runs if not problems else 0)
    # Refused re-runs and cancels are the expected answer to a race: one clear line.
    for o in refused:
        tally.bad(AREA, "\n" not in o["msg"] and "locked" not in o["msg"], o["msg"][:100])
    assert launched == 50
    assert not problems, "\n".join(problems[:40]) + f"\n({time.monotonic() - start:.0f}s)"


@pytest.mark.docker
@pytest.mark.slow
async def test_three_engines_on_docker(
    tmp_path: Path, tally: Tally, probe_image: str, workspace_containers: list[str]
) -> None:
    s = make_settings(
        tmp_path,
        executor="docker",
        concurrency=4,
        heartbeat_seconds=1.0,
        lease_timeout_seconds=10.0,
    )
    async with Engine(s) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        workspace_containers.append(e.ws.workspace_id)
    ops = await _three_engines(tmp_path, s, launches=9, reruns=6, cancels=3, timeout=240)
    problems = _check_everything(tmp_path, s, ops, tally, logs=True)
    n_runs = query(s.database_path, "select count(*) from run")[0][0]
    tally.fault(AREA, sum(1 for o in ops if o["op"] not in ("finished", "cli")))
    tally.hit(AREA, n_runs)
    tally.survived(AREA, n_runs if not problems else 0)
    for o in ops:
        if o.get("refused"):
            tally.bad(AREA, "\n" not in o["msg"] and "locked" not in o["msg"], o["msg"][:100])
    assert not problems, "\n".join(problems[:40])


# ------------------------------------------------------- a cancel while a run starts


def _slow_start(monkeypatch: pytest.MonkeyPatch, cls: Any, started: list[str]) -> None:
    """The executor's start takes a second longer after the container is up (a slow
    remote host): a cancel lands while the run is still `pending` without a ref."""
    orig = cls.start

    async def start(self: Any, spec: Any) -> str:
        ref = await orig(self, spec)
        started.append(ref)
        await anyio.sleep(1.5)
        return ref

    monkeypatch.setattr(cls, "start", start)


async def _cancel_during_start(e: Engine, started: list[str]) -> tuple[Any, str]:
    job = await e.launch("rel-probe", "m/v1", {"lines": 3, "sleep": 60})
    with anyio.fail_after(60):
        while len(started) == 0:
            await anyio.sleep(0.02)
    ref = started.pop()
    run = await e.cancel(job.id)
    assert run.status == "killed"  # pending without a ref: killed at once
    await anyio.sleep(3.0)  # the supervisor finishes its start meanwhile
    return await e.run(run.id), ref


async def test_cancel_while_starting_leaves_no_process_running(
    tmp_path: Path, tally: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []
    _slow_start(monkeypatch, ProcessExecutor, started)
    s = make_settings(tmp_path)
    async with Engine(s, supervise=True) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        run, ref = await _cancel_during_start(e, started)
        tally.fault(AREA)
        tally.hit(AREA)
        ex = e.executor("process", "local")
        assert isinstance(ex, ProcessExecutor)
        state = await ex.inspect(ref)
        assert state.status != "running", f"the process of killed run {run.id} still runs"
        assert run.status == "killed"
        assert [
            st
            for (st,) in query(
                s.database_path, "select status from run_event where run_id=? order by id", run.id
            )
        ] == ["pending", "killed"]
        tally.survived(AREA)


@pytest.mark.docker
async def test_cancel_while_starting_leaves_no_container_running(
    tmp_path: Path,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
    docker_client: Any,
    probe_image: str,
    workspace_containers: list[str],
) -> None:
    started: list[str] = []
    _slow_start(monkeypatch, DockerExecutor, started)
    s = make_settings(tmp_path, executor="docker")
    async with Engine(s, supervise=True) as e:
        workspace_containers.append(e.ws.workspace_id)
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        run, ref = await _cancel_during_start(e, started)
        tally.fault(AREA)
        tally.hit(AREA)
        running = [c for c in docker_client.containers.list() if c.id == ref]
        assert not running, f"the container of killed run {run.id} still runs"
        assert run.status == "killed"
        tally.survived(AREA)
