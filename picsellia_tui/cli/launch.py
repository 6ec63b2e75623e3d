"""`picsellia-tui launch`: hand the launch to the engine serving the workspace, or
run it with an engine of this process's own."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from picsellia_tui.cli.context import EXIT_FOR, JsonOpt, with_engine
from picsellia_tui.cli.errors import fail
from picsellia_tui.cli.logs import follow_log
from picsellia_tui.cli.remote import on_running_engine
from picsellia_tui.humanize import first_line

if TYPE_CHECKING:
    from picsellia_tui.engine.core import Engine


@dataclass(frozen=True)
class LaunchArgs:
    """What `launch` was asked, for either way of launching it."""

    processing: str
    version: str
    params: dict[str, str]
    name: str | None  # of the new version
    host: str | None
    wait: bool
    as_json: bool


def _params(values: list[str] | None) -> dict[str, str]:
    from picsellia_tui.paramargs import ParamArgError, parse_params

    try:
        return parse_params(values)
    except ParamArgError as exc:
        fail(str(exc), 2)


def launch(
    processing: Annotated[str, typer.Argument(help="Processing name.")],
    version: Annotated[str, typer.Argument(metavar="MODEL/VERSION", help="Target version.")],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="NAME=VALUE (repeat). For a secret: NAME=@FILE, NAME=@- (prompt) or "
            "NAME=@env (PICSELLIA_TUI_SECRET_NAME): a value on the command line shows in ps.",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Name of the new version.")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Docker host from the config.")] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Follow the log; exit code = run status (0 succeeded, 1 failed, 3 killed).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Launch a processing on a model version."""
    from picsellia_tui.cli.output import emit_json

    args = LaunchArgs(processing, version, _params(param), name, host, wait, as_json)
    job, run = _launch_on_running_engine(args) or _launch_here(args)
    if as_json:
        emit_json(job)
    else:
        print_outcome(job.id, run)
    if wait:
        raise typer.Exit(EXIT_FOR.get(run.status, 1))
    if run.status == "failed":
        raise typer.Exit(1)


def _job_line(job: Any) -> None:
    print(
        f"job {job.id}: {job.processing} on {job.target} -> {_output_label(job)}",
        file=sys.stderr,
        flush=True,
    )


def _output_label(job: Any) -> str:
    """JobView.output_label, for a job that came over the control socket as data."""
    from picsellia_tui.engine.views import JobView

    if isinstance(job, JobView):
        return job.output_label
    return JobView.model_validate(vars(job)).output_label


def _launch_on_running_engine(a: LaunchArgs) -> tuple[Any, Any] | None:
    """Hand the launch to an engine already running on this workspace (`engine
    serve`, the app): no engine start-up here, and it starts the container at
    once. None when there is none (or it does not share our settings)."""
    final = on_running_engine(
        "launch",
        lambda job: None if a.as_json else _job_line(job),
        processing=a.processing,
        version=a.version,
        params=a.params,
        name=a.name,
        host=a.host,
        wait=a.wait,
        log=a.wait and not a.as_json,
    )
    return None if final is None else (final.job, final.run)


def _launch_here(a: LaunchArgs) -> tuple[Any, Any]:
    """Launch with an engine of this process's own."""

    async def go(e: Engine) -> Any:
        job = await e.launch(
            a.processing, a.version, a.params, output_version_name=a.name, host=a.host
        )
        run = job.runs[-1]
        if not a.as_json:
            _job_line(job)
        if a.wait:
            if not a.as_json:
                await follow_log(e, run.id, timestamps=False)
            final = await e.wait_run(run.id)
        else:
            # Return once it has started: the container (or process) then outlives us.
            final = await e.wait_run(run.id, lambda r: r.status != "pending")
        return await e.job(job.id), final

    result: tuple[Any, Any] = with_engine(go, supervise=True)
    return result


def print_outcome(job_id: int, run: Any) -> None:
    """The final line of `launch` and `jobs rerun`: one format for both."""
    from picsellia_tui.cli.output import duration

    line = f"job {job_id} run #{run.attempt}: {run.status}"
    if run.duration_s is not None and run.status not in ("pending", "running"):
        line += f" in {duration(run.duration_s)}"
    if run.exit_code is not None:
        line += f" (exit {run.exit_code})"
    print(line)
    if run.status == "failed" and run.error_summary:
        print(first_line(run.error_summary), file=sys.stderr)
