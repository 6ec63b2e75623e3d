"""`picsellia-tui jobs list|show|logs|rerun|cancel`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from picsellia_tui.cli.context import EXIT_FOR, JsonOpt, with_engine
from picsellia_tui.cli.errors import fail
from picsellia_tui.cli.launch import print_outcome
from picsellia_tui.cli.logs import follow_log
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
    from picsellia_tui.cli import readcmds

    readcmds.jobs_list(status, limit, page, as_json)


@jobs_app.command("show")
def jobs_show(job_id: int, as_json: JsonOpt = False) -> None:
    """Show a job, its parameters (secrets masked) and its run history."""
    from picsellia_tui.cli import readcmds

    readcmds.jobs_show(job_id, as_json)


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
    from picsellia_tui.cli import readcmds

    readcmds.jobs_logs(job_id, run, follow, timestamps, tail)


@jobs_app.command("wait")
def jobs_wait(
    job_ids: Annotated[list[int], typer.Argument(metavar="JOB...", help="Jobs to wait for.")],
    as_json: JsonOpt = False,
) -> None:
    """Wait until the jobs' active runs end. Exit code as `launch --wait`: 0 when
    every job succeeded, else that of the first one that did not (1 failed,
    3 killed)."""
    from picsellia_tui.cli.output import emit_json
    from picsellia_tui.cli.remote import engine_events

    jobs: list[Any] | None = None
    events = engine_events("wait", job_ids=list(job_ids))
    if events is not None:
        try:
            for event in events:
                if event.get("event") in ("error", "refused"):
                    fail(str(event.get("message")), int(event.get("code", 1)))
                if event.get("event") == "final":
                    jobs = event["jobs"]
        except ConnectionError as exc:
            fail(f"lost the engine while waiting: {exc}")
    if jobs is None:

        async def go(e: Engine) -> list[Any]:
            views = [await e.job(i) for i in job_ids]
            for v in views:
                if v.runs and v.runs[-1].status in ("pending", "running"):
                    await e.wait_run(v.runs[-1].id)
            return [(await e.job(i)).model_dump(mode="json") for i in job_ids]

        jobs = with_engine(go, supervise=True)
    if as_json:
        emit_json(jobs)
    else:
        for j in jobs:
            last = j["runs"][-1] if j["runs"] else None
            line = f"job {j['id']}: {j['status']}"
            if last is not None:
                line = f"job {j['id']} run #{last['attempt']}: {last['status']}"
                if last["exit_code"] is not None:
                    line += f" (exit {last['exit_code']})"
            print(line)
    codes = [EXIT_FOR.get(j["status"], 1) for j in jobs]
    raise typer.Exit(next((c for c in codes if c != 0), 0))


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
