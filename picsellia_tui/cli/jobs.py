"""`picsellia-tui jobs list|show|logs|rerun|cancel`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from picsellia_tui.cli.context import EXIT_FOR, JsonOpt, with_engine
from picsellia_tui.cli.errors import fail
from picsellia_tui.cli.launch import print_outcome
from picsellia_tui.cli.logs import follow_log, print_once
from picsellia_tui.cli.remote import on_running_engine

if TYPE_CHECKING:
    from picsellia_tui.engine.core import Engine

jobs_app = typer.Typer(
    help="Jobs and their runs: list, show, logs, rerun, cancel.", no_args_is_help=True
)


@jobs_app.command("list")
def jobs_list(
    status: Annotated[
        str | None, typer.Option("--status", help="pending, running, succeeded, failed or killed")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10000)] = 50,
    page: Annotated[int, typer.Option("--page", min=1)] = 1,
    as_json: JsonOpt = False,
) -> None:
    """List jobs, newest first, one page at a time."""
    from picsellia_tui.cli.output import emit_json, table

    async def go(e: Engine) -> tuple[list[Any], int]:
        return await e.jobs(
            limit=limit, offset=(page - 1) * limit, status=status
        ), await e.count_jobs(status)

    rows, total = with_engine(go)
    if as_json:
        emit_json(rows)
        return
    table(
        ["job", "status", "processing", "target", "by", "created", "updated", "attempts"],
        [
            [
                j.id,
                j.status,
                j.processing,
                j.target,
                j.launched_by,
                j.created_at,
                j.updated_at,
                j.attempts,
            ]
            for j in rows
        ],
    )
    pages = max(1, -(-total // limit))
    if pages > 1:
        print(f"page {page}/{pages} ({total} jobs); next: --page {page + 1}", file=sys.stderr)


@jobs_app.command("show")
def jobs_show(job_id: int, as_json: JsonOpt = False) -> None:
    """Show a job, its parameters (secrets masked) and its run history."""
    from picsellia_tui.cli.output import duration, emit_json, table, when

    j = with_engine(lambda e: e.job(job_id))
    if as_json:
        emit_json(j)
        return
    print(f"job {j.id}: {j.processing} on {j.target}  [{j.status}]")
    print(f"  launched by {j.launched_by} at {when(j.created_at)} on {j.executor}:{j.host}")
    print(f"  image {j.image_ref}")
    print(f"  output version: {j.output_label}")
    print("  parameters: " + (", ".join(f"{k}={v}" for k, v in j.parameters.items()) or "-"))
    print()
    table(
        ["attempt", "status", "by", "started", "duration", "exit", "image", "output version"],
        [
            [
                r.attempt,
                r.status,
                r.launched_by,
                r.started_at,
                duration(r.duration_s),
                r.exit_code,
                _run_image(r),
                r.output_version_id,
            ]
            for r in j.runs
        ],
    )
    last = j.runs[-1] if j.runs else None
    if last and last.error_summary and last.status in ("failed", "killed"):
        from picsellia_tui.engine.logtext import strip_ansi

        print("\nerror summary of the last run:")
        # Line by line, as the terminal would leave each: a stored summary holding a
        # cursor move or a lone carriage return must not glue the next line to it.
        for line in last.error_summary.rstrip("\n").split("\n"):
            print(strip_ansi(line))


def _run_image(r: Any) -> str:
    """A run's short digest, marked where it differs from the run before."""
    if not r.short_digest:
        return "-"
    pinned = " (pinned)" if (r.image_ref or "").rpartition("@")[2].startswith("sha256:") else ""
    return f"{r.short_digest}{' (changed)' if r.image_changed else ''}{pinned}"


@jobs_app.command("logs")
def jobs_logs(
    job_id: int,
    run: Annotated[
        int | None, typer.Option("--run", help="Attempt number (default: latest).")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Follow while the run is active.")
    ] = False,
    timestamps: Annotated[bool, typer.Option("--timestamps", "-t")] = False,
    tail: Annotated[int | None, typer.Option("--tail", help="Only the last N lines.")] = None,
) -> None:
    """Print a run's log (control sequences removed)."""

    async def go(e: Engine) -> None:
        from picsellia_tui.storage.logfile import LogReader

        j = await e.job(job_id)
        runs = [r for r in j.runs if run is None or r.attempt == run]
        if not runs:
            fail(f"job {job_id} has no run #{run}")
        r = runs[-1]
        start = 0
        if tail is not None:
            reader = LogReader(Path(r.log_path))
            start = max(0, len(reader) - tail)
            reader.close()
        if follow:
            await follow_log(e, r.id, timestamps, start)
        else:
            await print_once(r.log_path, timestamps, start)

    with_engine(go, supervise=follow)


@jobs_app.command("rerun")
def jobs_rerun(
    job_id: int,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the log; exit code = run status.")
    ] = False,
    same_image: Annotated[
        bool,
        typer.Option(
            "--same-image",
            help="Run the image digest the previous run ran (an exact reproduction) "
            "instead of the processing's current image.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-run a job with its parameters on the processing's current definition and
    image (refused while a run is active)."""
    from picsellia_tui.cli.output import emit_json

    def queued(run: Any) -> None:
        if not as_json:
            what = "the image of the previous run" if same_image else f"image {run.image_ref}"
            print(f"job {job_id}: run #{run.attempt} queued ({what})", file=sys.stderr, flush=True)

    async def go(e: Engine) -> Any:
        run = await e.rerun(job_id, same_image=same_image)
        queued(run)
        if wait:
            if not as_json:
                await follow_log(e, run.id, timestamps=False)
            return await e.wait_run(run.id)
        return await e.wait_run(run.id, lambda r: r.status != "pending")

    served = on_running_engine(
        "rerun", queued, job_id=job_id, same_image=same_image, wait=wait, log=wait and not as_json
    )
    run = served.run if served is not None else with_engine(go, supervise=True)
    if as_json:
        emit_json(run)
    else:
        print_outcome(job_id, run)
    if wait:
        raise typer.Exit(EXIT_FOR.get(run.status, 1))


@jobs_app.command("cancel")
def jobs_cancel(job_id: int, as_json: JsonOpt = False) -> None:
    """Cancel the job's active run (SIGTERM, grace period, then SIGKILL)."""
    from picsellia_tui.cli.output import emit_json

    async def go(e: Engine) -> Any:
        run = await e.cancel(job_id)
        with __import__("anyio").move_on_after(e.settings.cancel_grace_seconds + 30):
            run = await e.wait_run(run.id)
        return run

    served = on_running_engine("cancel", lambda run: None, job_id=job_id)
    run = served.run if served is not None else with_engine(go, supervise=True)
    if as_json:
        emit_json(run)
    else:
        print(f"job {job_id} run #{run.attempt}: {run.status}")
