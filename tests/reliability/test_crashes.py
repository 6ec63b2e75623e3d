"""Crashes on a real dockerd: an engine SIGKILLed at chosen and random points (before
the container starts, between create and start, mid-log with a torn write, inside
the transaction that records `running`, during output collection, between the blob
store and the database, inside the ingest transaction, at a random time), then a
fresh engine takes over. Every run must end with its true status, a log equal to
`docker logs` line for line, and its outputs ingested exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.executors.docker_executor import DockerExecutor
from tests.reliability.helpers import (
    SECRET,
    Tally,
    docker_by_stream,
    history_problems,
    integrity,
    lines_lost,
    make_settings,
    masked,
    model_file,
    query,
    settings_json,
    stored_by_stream,
    versions_of_job,
    worker_cmd,
)

pytestmark = [pytest.mark.anyio, pytest.mark.docker, pytest.mark.slow]
AREA = "crashes"
SEED = int(os.environ.get("RELIABILITY_SEED", "7"))

# Each plan is a chain of engines SIGKILLed in turn, then a last engine finishes:
# (point, range to draw "the N-th time the point is reached" from). The first engine
# launches three runs; the next ones recover, and may die while recovering.
PLANS: list[list[tuple[str, tuple[int, int]]]] = [
    [("before-start", (1, 3))],
    [("after-create", (1, 3))],
    [("after-start", (1, 3))],
    [("running-tx", (1, 3))],
    [("mid-log", (20, 90))],
    [("mid-log-torn", (20, 90))],
    [("in-collect", (1, 2))],
    [("after-store", (1, 2))],
    [("ingest-tx", (1, 2))],
    [("fail-tx", (1, 1))],
    [("launch-tx", (2, 3))],
    [("timer", (0, 0))],
    [("mid-log-torn", (20, 60)), ("ingest-tx", (1, 1))],  # dies again while recovering
    [("timer", (0, 0)), ("timer", (0, 0))],
]


def _launches(rng: random.Random) -> list[dict[str, Any]]:
    """Three runs: two that succeed (one with a secret), one that fails."""
    out = []
    for i in range(3):
        params: dict[str, Any] = {"lines": rng.randint(30, 70), "interval": 0.02}
        if i == 1:
            params["token"] = SECRET
        if i == 2:
            params["fail"] = True
        out.append({"processing": "rel-probe", "version": "m/v1", "params": params})
    return out


async def _wait_all_final(db: Path, timeout: float) -> None:
    with anyio.fail_after(timeout):
        while True:
            rows = query(db, "select count(*) from run where status in ('pending','running')")
            if rows[0][0] == 0:
                return
            await anyio.sleep(0.2)


def _container(client: Any, ws: str, run_id: int) -> tuple[Any, int]:
    """The run's container and how many containers carry its label."""
    found = client.containers.list(
        all=True, filters={"label": f"picsellia-tui.run_id={ws[:12]}-{run_id}"}
    )
    started = [c for c in found if not c.attrs["State"]["StartedAt"].startswith("0001-01-01")]
    return (started[0] if started else None), len(found)


async def _crash_one(
    tmp: Path,
    k: int,
    s: Any,
    point: str,
    after: int,
    launches: list[dict[str, Any]],
    rng: random.Random,
    tally: Tally,
) -> str:
    """Engine number `k` in its own process, SIGKILLed at `point`; where it died."""
    db = s.database_path
    marker, started = tmp / f"died-at-{k}", tmp / f"started-{k}"
    cfg = {
        "settings": settings_json(s),
        "crash": None if point == "timer" else {"point": point, "after": after},
        "keep": True,
        "marker": str(marker),
        "started": str(started),
        "launches": launches,
    }
    log = (tmp / f"worker-{k}.log").open("wb")
    proc = subprocess.Popen(worker_cmd(cfg, tmp / f"cfg-{k}.json"), stdout=log, stderr=log)
    try:
        with anyio.fail_after(60):
            while not started.exists() and proc.poll() is None:
                await anyio.sleep(0.05)
        if point == "timer":
            await anyio.sleep(rng.uniform(0.3, 4.0))  # then a SIGKILL, wherever it is
        else:
            with anyio.move_on_after(60):
                while proc.poll() is None:
                    if _all_final(db):  # nothing left where the point could be reached
                        await anyio.sleep(1.0)
                        if _all_final(db):
                            break
                    await anyio.sleep(0.05)
        if proc.poll() is None:  # the point was not reached: a SIGKILL at a random time
            proc.kill()
            if point != "timer":
                tally.note(AREA, f"{point}/{after} never reached: killed by timer")
    finally:
        proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL, (tmp / f"worker-{k}.log").read_text()[-2000:]
    tally.fault(AREA)
    return marker.read_text() if marker.exists() else "timer"


def _all_final(db: Path) -> bool:
    return query(db, "select count(*) from run where status in ('pending','running')")[0][0] == 0


async def _cycle(
    tmp: Path, plan: list[tuple[str, int]], rng: random.Random, client: Any, tally: Tally
) -> list[str]:
    """Engines SIGKILLed in turn as `plan` says, a fresh one finishes; the problems."""
    s = make_settings(
        tmp, executor="docker", keep_failed_containers=True, concurrency=3, lease_timeout_seconds=3
    )
    async with Engine(s) as e:
        await e.import_version("m", "v1", [model_file(tmp)], framework="onnx")
        ws = e.ws.workspace_id
    db = s.database_path
    died = []
    in_flight: set[int] = set()
    for k, (point, after) in enumerate(plan):
        launches = _launches(rng) if k == 0 else []
        died.append(await _crash_one(tmp, k, s, point, after, launches, rng, tally))
        if k == 0:
            in_flight = {
                rid
                for (rid,) in query(db, "select id from run where status in ('pending','running')")
            }
            tally.hit(AREA, len(in_flight))
        assert integrity(db) == "ok"

    async with Engine(s, supervise=True):
        with anyio.fail_after(120):
            while not _all_final(db):
                await anyio.sleep(0.2)

    problems: list[str] = []
    runs = query(
        db,
        "select run.id, run.job_id, run.attempt, run.status, run.exit_code, run.log_path,"
        " run.output_version_id, run.error_summary, job.parameters from run"
        " join job on job.id = run.job_id order by run.id",
    )
    assert runs, "no run was launched"
    succeeded = 0
    for rid, jid, _attempt, status, code, log_path, out_version, summary, params_json in runs:
        params = json.loads(params_json)
        mine: list[str] = []
        want = "failed" if params.get("fail") else "succeeded"
        if status != want or code != (1 if want == "failed" else 0):
            mine.append(f"run {rid}: {status} exit {code}, expected {want} ({summary!r:.200})")
        n_versions = versions_of_job(db, jid)
        if n_versions != (1 if want == "succeeded" else 0):
            mine.append(f"run {rid}: {n_versions} versions from job {jid}")
        if want == "succeeded":
            succeeded += 1
            if out_version is None:
                mine.append(f"run {rid}: no output version recorded")
        container, count = _container(client, ws, rid)
        if container is None:
            mine.append(f"run {rid}: no started container ({count} with its label)")
        else:
            if count != 1:
                mine.append(f"run {rid}: {count} containers carry its label")
            theirs_by = {k: [masked(t) for t in v] for k, v in docker_by_stream(container).items()}
            ours_by = stored_by_stream(log_path)
            ours = ours_by["stdout"] + ours_by["stderr"]
            theirs = theirs_by["stdout"] + theirs_by["stderr"]
            lost = sum(lines_lost(ours_by[k], theirs_by[k]) for k in ours_by)
            tally.lost(AREA, lost)
            if ours_by != theirs_by:
                mine.append(
                    f"run {rid}: log differs from docker logs ({len(ours)} vs {len(theirs)} lines,"
                    f" {lost} lost or doubled)"
                )
            if any(SECRET in t for t in ours):
                mine.append(f"run {rid}: the secret is in the log")
        if summary and "engine error" in summary:
            mine.append(f"run {rid}: {summary.splitlines()[0]}")
        if rid in in_flight and not mine:
            tally.survived(AREA)
        problems += mine
    total_versions = query(db, "select count(*) from model_version")[0][0]
    if total_versions != 1 + succeeded:
        problems.append(f"{total_versions} versions for {succeeded} succeeded runs (+1 seed)")
    problems += history_problems(db)
    if integrity(db) != "ok":
        problems.append("integrity_check failed")
    where = " then ".join(died)
    return [f"[{where}] {p}" for p in problems]


async def test_engine_sigkilled_at_every_point_runs_end_truthfully(
    tmp_path: Path,
    docker_client: Any,
    probe_image: str,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
    workspace_containers: list[str],
) -> None:
    """>= 20 runs across 11 crash points; cycles run four at a time."""

    async def keep(self: Any, ref: str) -> None:  # compare with docker logs afterwards
        return None

    monkeypatch.setattr(DockerExecutor, "remove", keep)
    rng = random.Random(SEED)
    plans = [[(p, rng.randint(*r) if r != (0, 0) else 0) for p, r in plan] for plan in PLANS]
    only = os.environ.get("RELIABILITY_POINTS")  # e.g. "after-create,timer" to debug one
    if only:
        plans = [p for p in plans if p[0][0] in only.split(",")]
    problems: list[str] = []
    limiter = anyio.CapacityLimiter(4)

    async def one(i: int, plan: list[tuple[str, int]]) -> None:
        tmp = tmp_path / f"c{i}-{plan[0][0]}"
        tmp.mkdir()
        async with limiter:
            try:
                found = await _cycle(tmp, plan, random.Random(SEED + i), docker_client, tally)
            finally:
                import sqlite3

                try:
                    con = sqlite3.connect(tmp / "data" / "picsellia.db")
                    ws = con.execute("select value from meta where key='workspace_id'").fetchone()
                    con.close()
                    if ws:
                        workspace_containers.append(ws[0])
                except Exception:
                    pass
        problems.extend(found)

    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        for i, plan in enumerate(plans):
            tg.start_soon(one, i, plan)
    runs = sum(query(db, "select count(*) from run")[0][0] for db in tmp_path.glob("c*/data/*.db"))
    assert only or runs >= 20, f"only {runs} runs went through a crash cycle"
    assert not problems, "\n".join(problems) + f"\n({time.monotonic() - start:.0f}s)"
