"""Target 4, big histories: 100,000 jobs and 300,000 runs (20,000 / 60,000 with
--quick), inserted with SQL from one real launched job.

a) The Jobs tab's first paint (engine start + app start + `3` until the first
   frame listing jobs) against the same on an empty workspace. Goal: within 2x.
b) The list queries' plans (EXPLAIN QUERY PLAN): every table access must be a
   SEARCH or go through an index (no full SCAN, no temporary B-tree sort).
c) `picsellia-tui jobs list` pages: one page of 50 on the big workspace against
   the empty one (same command). Goal: within 2x (it must not load everything).
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import (
    PROCESSING,
    PYTHON,
    Row,
    bench_settings,
    emit,
    median,
    secs,
    seed,
    tempdir,
    write_config,
)

SIZE = (120, 36)


def populate(root: Path, jobs: int) -> Any:
    """A workspace with `jobs` jobs of 3 runs each (plus the seed job)."""
    import anyio

    from picsellia_tui.engine.core import Engine

    settings = bench_settings(root, executor="process")

    async def one() -> None:
        # The seed job runs to its end: its log is the one `jobs logs 1` reads (target 9).
        async with Engine(settings, supervise=True) as e:
            ref = await seed(e, root)
            job = await e.launch(PROCESSING, ref, {"lines": 1})
            await e.wait_run(job.runs[0].id)

    anyio.run(one)
    if jobs:
        con = sqlite3.connect(settings.database_path)
        with con:
            jcols = [r[1] for r in con.execute("PRAGMA table_info(job)") if r[1] != "id"]
            rcols = [r[1] for r in con.execute("PRAGMA table_info(run)") if r[1] != "id"]
            js = ", ".join(jcols)
            sel = ", ".join(
                {
                    "created_at": "datetime('2024-01-01', '+' || n || ' minutes')",
                    "updated_at": "datetime('2024-01-01', '+' || n || ' minutes')",
                    "last_status": "CASE n % 10 WHEN 0 THEN 'failed' ELSE 'succeeded' END",
                    "attempts": "3",
                }.get(c, c)
                for c in jcols
            )
            con.execute(
                f"WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < {jobs}) "
                f"INSERT INTO job ({js}) SELECT {sel} FROM k, job WHERE job.id = 1"
            )
            rs = ", ".join(rcols)
            rsel = ", ".join(
                {
                    "job_id": "j.id",
                    "attempt": "a.n",
                    "status": "CASE WHEN a.n < 3 THEN 'failed' ELSE j.last_status END",
                    "created_at": "j.created_at",
                    "started_at": "j.created_at",
                    "ended_at": "datetime(j.created_at, '+30 seconds')",
                    "exit_code": "CASE WHEN a.n < 3 THEN 1 ELSE 0 END",
                    "log_path": "run.log_path || '.' || j.id || '.' || a.n",
                    "ref": "NULL",
                }.get(c, "run." + c)
                for c in rcols
            )
            con.execute(
                "WITH a(n) AS (VALUES (1), (2), (3)) "
                f"INSERT INTO run ({rs}) SELECT {rsel} FROM job j, a, run WHERE run.id = 1 "
                "AND j.id > 1"
            )
        con.execute("ANALYZE")
        con.close()
    return settings


async def first_paint(settings: Any) -> float:
    import anyio
    from textual.widgets import TabbedContent

    from bench.tui_common import TimedApp, wait_list
    from picsellia_tui.tui.app import AppEngineHandle
    from picsellia_tui.tui.widgets.jobs import JobsPane
    from picsellia_tui.tui.widgets.jobs_table import JobsTable

    t0 = time.perf_counter()
    handle = AppEngineHandle(settings, supervise=True)
    await anyio.to_thread.run_sync(handle.start)
    try:
        app = TimedApp(handle, frozen_time=True)
        async with app.run_test(size=SIZE) as pilot:
            pane = app.query_one(JobsPane)
            out = app.when(
                lambda: (
                    app.query_one("#tabs", TabbedContent).active == "jobs"
                    and pane.table.loaded
                    and app.query_one(JobsTable).row_count > 0
                )
            )
            await pilot.press("3")
            return await wait_list(pilot, out, 120) - t0
    finally:
        await anyio.to_thread.run_sync(handle.stop)


def query_plans(settings: Any) -> tuple[list[str], list[str]]:
    """(plan lines, offending lines) of the list queries."""
    from sqlalchemy.dialects import sqlite as sqlite_dialect
    from sqlmodel import col, func, select

    from picsellia_tui.storage.models import Job, Run

    stmts: dict[str, Any] = {
        "jobs page (newest first)": select(Job).order_by(col(Job.id).desc()).limit(200),
        "jobs next page (before_id)": select(Job)
        .where(col(Job.id) < 50_000)
        .order_by(col(Job.id).desc())
        .limit(200),
        "jobs by status": select(Job)
        .where(Job.last_status == "failed")
        .order_by(col(Job.id).desc())
        .limit(50),
        # As engine.queries.list_jobs(changed_since=...) orders it.
        "jobs changed since": select(Job)
        .where(col(Job.updated_at) > datetime(2024, 3, 1))
        .order_by(col(Job.updated_at).desc(), col(Job.id).desc())
        .limit(500),
        "count jobs by status": select(func.count())
        .select_from(Job)
        .where(Job.last_status == "failed"),
        "runs of a job": select(Run).where(Run.job_id == 4242).order_by(col(Run.attempt)),
        "active run counts": select(Run.status, func.count())
        .where(col(Run.status).in_(["pending", "running"]))
        .group_by(col(Run.status)),
    }
    con = sqlite3.connect(settings.database_path)
    lines: list[str] = []
    bad: list[str] = []
    for name, stmt in stmts.items():
        compiled = stmt.compile(
            dialect=sqlite_dialect.dialect(), compile_kwargs={"render_postcompile": True}
        )
        params = [
            v.isoformat(" ") if isinstance(v, datetime) else v
            for v in (compiled.params[k] for k in compiled.positiontup or [])
        ]
        lines.append(f"-- {name}")
        for row in con.execute("EXPLAIN QUERY PLAN " + str(compiled), params):
            detail = row[-1]
            lines.append(f"   {detail}")
            # A bare SCAN is a full scan, except the newest-first page: it walks the
            # rowid B-tree backwards and stops at LIMIT (no sort, no filter).
            ordered = name == "jobs page (newest first)" and detail == "SCAN job"
            scan = detail.startswith("SCAN") and "USING" not in detail and not ordered
            if scan or "TEMP B-TREE" in detail:
                bad.append(f"{name}: {detail}")
    con.close()
    return lines, bad


def cli_list(settings: Any, root: Path, reps: int) -> tuple[float, str]:
    cfg = write_config(root, settings)
    cli = [PYTHON, "-m", "picsellia_tui", "--config", str(cfg), "jobs", "list"]
    times = []
    err = ""
    for _ in range(reps):
        t0 = time.perf_counter()
        p = subprocess.run(cli, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - t0)
        err = p.stderr.strip()
        rows = len(p.stdout.splitlines()) - 1
    return median(times), f"{rows} rows; {err}"


def main(quick: bool) -> list[Row]:
    import anyio

    jobs = 20_000 if quick else 100_000
    reps = 3 if quick else 5
    with tempdir("t4-empty") as e_root, tempdir("t4-big") as b_root:
        empty = populate(e_root, 0)
        t = time.perf_counter()
        big = populate(b_root, jobs)
        fill = time.perf_counter() - t
        e_paint, b_paint = [], []
        for _ in range(reps):
            e_paint.append(anyio.run(first_paint, empty))
            b_paint.append(anyio.run(first_paint, big))
        plans, bad = query_plans(big)
        e_cli, _ = cli_list(empty, e_root, reps)
        b_cli, b_out = cli_list(big, b_root, reps)
    print("\n".join(plans))
    ep, bp = median(e_paint), median(b_paint)
    return [
        Row(
            f"4a Jobs tab first paint, {jobs:,} jobs / {3 * jobs:,} runs",
            f"1-job workspace: {secs(ep)}",
            secs(bp),
            bp / ep,
            "<= 2x",
            bp / ep <= 2,
            f"medians of {reps}, from engine start; filled in {fill:.0f} s",
        ),
        Row(
            "4b list queries use indexes (EXPLAIN QUERY PLAN)",
            "-",
            f"{len(bad)} full scans/temp sorts",
            None,
            "none",
            not bad,
            "; ".join(bad) or "plans printed above the table",
        ),
        Row(
            "4c `jobs list` (one page) on the big workspace",
            f"1-job workspace: {secs(e_cli)}",
            secs(b_cli),
            b_cli / e_cli,
            "<= 2x, paged",
            b_cli / e_cli <= 2 and "page 1/" in b_out,
            b_out,
        ),
    ]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    emit(main(ap.parse_args().quick))
