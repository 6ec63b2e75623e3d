"""The command line: the same engine as the TUI, scriptable.

Module-level imports stay light (no Textual, docker or SQLAlchemy) so `--help`
and `--version` start fast; each command imports what it needs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from picsellia_tui import __version__

if TYPE_CHECKING:
    from picsellia_tui.engine.config import Settings
    from picsellia_tui.engine.core import Engine

T = TypeVar("T")

app = typer.Typer(
    name="picsellia-tui",
    help="Run Picsellia Processings on your ModelVersions, in Docker, from the terminal.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
processings_app = typer.Typer(help="Processings: list, show, create, build.", no_args_is_help=True)
models_app = typer.Typer(
    help="Models and their versions: import, list, show.", no_args_is_help=True
)
jobs_app = typer.Typer(
    help="Jobs and their runs: list, show, logs, rerun, cancel.", no_args_is_help=True
)
engine_app = typer.Typer(help="The engine, headless.", no_args_is_help=True)
app.add_typer(processings_app, name="processings")
app.add_typer(models_app, name="models")
app.add_typer(jobs_app, name="jobs")
app.add_typer(engine_app, name="engine")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print data as JSON.")]
STATE: dict[str, Any] = {"config": None, "overrides": {}}


class CliError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 1) -> NoReturn:
    raise CliError(message, code)


def settings() -> Settings:
    from picsellia_tui.engine.config import load_settings

    return load_settings(STATE["config"], **STATE["overrides"])


def with_engine(fn: Callable[[Engine], Awaitable[T]], supervise: bool = False) -> T:
    import anyio

    from picsellia_tui.engine.core import Engine

    async def main() -> T:
        async with Engine(settings(), supervise=supervise) as engine:
            return await fn(engine)

    return anyio.run(main)


def _version_cb(value: bool) -> None:
    if value:
        print(f"picsellia-tui {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Config file (else $PICSELLIA_TUI_CONFIG, else the user config dir)."
        ),
    ] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Workspace folder.")] = None,
    executor: Annotated[
        str | None, typer.Option("--executor", help="docker or process (overrides config).")
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_cb, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    STATE["config"] = config
    if data_dir is not None:
        STATE["overrides"]["data_dir"] = data_dir
    if executor is not None:
        STATE["overrides"]["executor"] = executor
    if ctx.invoked_subcommand is None:
        open_tui(settings)


def open_tui(s: Settings | Callable[[], Settings]) -> None:
    try:
        from picsellia_tui.tui.app import run_app
    except ImportError as exc:
        fail(f"the interface cannot start: {exc}")
    run_app(s)


# -- processings ---------------------------------------------------------------------------


@processings_app.command("list")
def processings_list(as_json: JsonOpt = False) -> None:
    """List processings, grouped by target type."""
    from picsellia_tui.tui.output import emit_json, table

    rows = with_engine(lambda e: e.processings())
    if as_json:
        emit_json(rows)
        return
    table(
        ["name", "version", "task", "target", "visibility", "frameworks", "description"],
        [
            [
                p.name,
                p.version,
                p.task,
                p.target_type,
                p.visibility,
                p.constraints.frameworks or "any",
                p.description,
            ]
            for p in rows
        ],
    )


@processings_app.command("show")
def processings_show(name: str, as_json: JsonOpt = False) -> None:
    """Show a processing's definition and parameters."""
    from picsellia_tui.tui.output import emit_json, table

    p = with_engine(lambda e: e.processing(name))
    if as_json:
        emit_json(p)
        return
    print(f"{p.name} {p.version} ({p.visibility}{', owner ' + p.owner if p.owner else ''})")
    print(f"  {p.description}")
    print(f"  task: {p.task}   target: {p.target_type}   output: {p.output_mode}")
    run = " ".join(p.command) or "(the image's own)"
    entry = f"   entrypoint: {' '.join(p.entrypoint)}" if p.entrypoint else ""
    print(f"  image: {p.image}   command: {run}{entry}")
    c = p.constraints
    print(
        f"  frameworks: {', '.join(c.frameworks) or 'any'}   required files: "
        f"{', '.join(c.required_files) or '-'}   cpu: {c.cpu or '-'}   memory: {c.memory or '-'}"
        f"   gpu: {c.gpu}   network: {c.network}"
    )
    if p.source_dir:
        print(f"  folder: {p.source_dir}")
    if p.parameters:
        print()
        table(
            ["parameter", "type", "default", "required", "range/choices", "help"],
            [
                [
                    s.name + (" (secret)" if s.secret else ""),
                    s.type,
                    "••••••" if s.secret and s.default else s.default,
                    s.required,
                    ",".join(s.choices) if s.choices else _range(s.min, s.max),
                    s.help,
                ]
                for s in p.parameters
            ],
        )


def _range(lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return "-"
    return f"{'' if lo is None else lo:g}..{'' if hi is None else hi:g}"


@processings_app.command("create")
def processings_create(
    folder: Annotated[
        Path | None, typer.Argument(help="Folder with processing.toml + Dockerfile.")
    ] = None,
    from_template: Annotated[
        str | None,
        typer.Option(
            "--from-template", metavar="NAME", help="Scaffold a new folder NAME from the template."
        ),
    ] = None,
    dest: Annotated[Path, typer.Option("--dest", help="Where --from-template writes.")] = Path("."),
    image: Annotated[
        str | None,
        typer.Option("--image", help="Register an existing image instead of a folder."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="With --image: its name (default: the image's name)."),
    ] = None,
    task: Annotated[str, typer.Option("--task", help="With --image.")] = "MODEL_CONVERSION",
    command: Annotated[
        str | None,
        typer.Option(
            "--command",
            help="With --image: the command (default: none, the image's own ENTRYPOINT/CMD runs).",
        ),
    ] = None,
    entrypoint: Annotated[
        str | None,
        typer.Option("--entrypoint", help="With --image: replaces the image's ENTRYPOINT."),
    ] = None,
    framework: Annotated[
        list[str] | None, typer.Option("--framework", help="With --image: accepted (repeat).")
    ] = None,
    output_mode: Annotated[str, typer.Option("--output-mode")] = "new_model_version",
    description: Annotated[str, typer.Option("--description")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create (or update) a private processing: from a folder, from the template, or
    from an existing image."""
    import shlex

    from picsellia_tui.engine import catalog
    from picsellia_tui.tui.output import emit_json

    async def go(e: Engine) -> Any:
        if image is not None:
            definition: dict[str, Any] = {
                "name": name or catalog.name_from_image(image),
                "image": image,
                "task": task,
                "command": shlex.split(command or ""),
                "output_mode": output_mode,
                "description": description,
                "constraints": {"frameworks": list(framework or [])},
            }
            if entrypoint is not None:
                definition["entrypoint"] = shlex.split(entrypoint)
            return await e.create_processing(definition=definition)
        target = folder
        if from_template:
            target = catalog.scaffold(e.ws, from_template, dest)
            print(
                f"scaffolded {target}: edit main.py, then "
                f"`picsellia-tui processings build {from_template}`",
                file=sys.stderr,
            )
        if target is None:
            fail("give a FOLDER, --from-template NAME or --image IMAGE --name NAME")
        return await e.create_processing(target)

    p = with_engine(go)
    if as_json:
        emit_json(p)
    else:
        print(f"private processing {p.name} {p.version} saved (image {p.image})")


@processings_app.command("build")
def processings_build(
    names: Annotated[list[str] | None, typer.Argument(help="Processings to build.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Build every public processing.")] = False,
    host: Annotated[str | None, typer.Option("--host", help="Docker host from the config.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print the result.")] = False,
) -> None:
    """Build processing images on a Docker host, streaming the build log (Docker's
    cache is reused)."""

    def line(text: str) -> None:
        if not quiet:
            print(f"   {text}", file=sys.stderr, flush=True)

    async def go(e: Engine) -> int:
        procs = await e.processings()
        if all_:
            chosen = [p.name for p in procs if p.visibility == "public"]
        elif names:
            chosen = list(names)
        else:
            fail("name the processings to build, or --all")
        failed = 0
        for name in chosen:
            print(
                f"== building {name} on {host or e.settings.default_host}",
                file=sys.stderr,
                flush=True,
            )
            try:
                image, image_id = await e.build_processing(name, host=host, on_line=line)
                print(f"{name}: built {image} ({image_id[:19]})", flush=True)
            except Exception as exc:
                if type(exc).__name__ == "NotFound":
                    raise
                failed += 1
                print(f"{name}: build failed: {_first_line(exc)}", file=sys.stderr, flush=True)
        return failed

    failed = with_engine(go)
    if failed:
        fail(f"{failed} image(s) failed to build")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- models ---------------------------------------------------------------------------------


@models_app.command("import")
def models_import(
    ref: Annotated[str, typer.Argument(metavar="MODEL/VERSION", help="e.g. resnet/v1")],
    files: Annotated[list[Path], typer.Argument(help="Files or folders to import.")],
    framework: Annotated[
        str, typer.Option("--framework", "-f", help="onnx, openvino, ort, ...")
    ] = "onnx",
    label: Annotated[
        list[str] | None, typer.Option("--label", help="A class label (repeat).")
    ] = None,
    labels_file: Annotated[
        Path | None, typer.Option("--labels-file", help="One label per line, or a JSON list.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeat).")] = None,
    description: Annotated[str, typer.Option("--description")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Import files as a new ModelVersion (content-addressed, deduplicated)."""
    import json as _json

    from picsellia_tui.tui.output import emit_json, size

    model, sep, version = ref.partition("/")
    if not sep or not model or not version:
        fail(f"{ref!r}: name the version as MODEL/VERSION")
    labels = list(label or [])
    if labels_file is not None:
        text = labels_file.read_text()
        labels += _json.loads(text) if text.lstrip().startswith("[") else text.split()
    v = with_engine(
        lambda e: e.import_version(
            model,
            version,
            files,
            framework=framework,
            labels=labels,
            tags=tag,
            description=description,
        )
    )
    if as_json:
        emit_json(v)
    else:
        print(
            f"imported {v.model}/{v.name} ({v.framework}, {len(v.files)} files, "
            f"{size(v.size_bytes)}) id {v.id}"
        )


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """List model versions."""
    from picsellia_tui.tui.output import emit_json, size, table

    rows = with_engine(lambda e: e.versions())
    if as_json:
        emit_json(rows)
        return
    table(
        ["id", "model/version", "framework", "tags", "size", "origin job", "parent", "created"],
        [
            [
                v.id,
                v.ref,
                v.framework,
                v.tags,
                size(v.size_bytes),
                v.origin_job_id,
                v.parent,
                v.created_at,
            ]
            for v in rows
        ],
    )


@models_app.command("show")
def models_show(
    ref: Annotated[str, typer.Argument(metavar="MODEL/VERSION|ID")], as_json: JsonOpt = False
) -> None:
    """Show a version: files, labels, metrics, lineage."""
    from picsellia_tui.tui.output import emit_json, size, table, when

    v = with_engine(lambda e: e.version(ref))
    if as_json:
        emit_json(v)
        return
    print(
        f"{v.ref} (id {v.id})  framework {v.framework}  {size(v.size_bytes)}  "
        f"created {when(v.created_at)} by {v.created_by or '-'}"
    )
    print(f"  tags: {', '.join(v.tags) or '-'}")
    print(f"  labels: {', '.join(v.labels) or '-'}")
    print(f"  lineage: parent {v.parent or '-'}, origin job {v.origin_job_id or '-'}")
    if v.metrics:
        print("  metrics: " + ", ".join(f"{k}={_num(x)}" for k, x in v.metrics.items()))
    table(["file", "size", "sha256"], [[f.path, size(f.size), f.sha256] for f in v.files])


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


# -- launch and jobs --------------------------------------------------------------------------

EXIT_FOR = {"succeeded": 0, "failed": 1, "killed": 3}


def _params(values: list[str] | None) -> dict[str, str]:
    out = {}
    for item in values or []:
        key, sep, val = item.partition("=")
        if not sep or not key:
            fail(f"-p {item!r}: write parameters as NAME=VALUE")
        out[key.strip()] = val
    return out


@app.command("launch")
def launch(
    processing: Annotated[str, typer.Argument(help="Processing name.")],
    version: Annotated[str, typer.Argument(metavar="MODEL/VERSION", help="Target version.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE (repeat).")
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
    from picsellia_tui.tui.output import emit_json

    params = _params(param)
    served = _launch_on_running_engine(processing, version, params, name, host, wait, as_json)
    if served is not None:
        job, run = served
    else:
        job, run = _launch_here(processing, version, params, name, host, wait, as_json)
    if as_json:
        emit_json(job)
    else:
        _print_outcome(job.id, run)
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


def _launch_on_running_engine(
    processing: str,
    version: str,
    params: dict[str, str],
    name: str | None,
    host: str | None,
    wait: bool,
    as_json: bool,
) -> tuple[Any, Any] | None:
    """Hand the launch to an engine already running on this workspace (`engine
    serve`, the app): no engine start-up here, and it starts the container at
    once. None when there is none (or it does not share our settings)."""
    args = {"processing": processing, "version": version, "params": params, "name": name}
    final = _on_running_engine(
        "launch",
        lambda job: None if as_json else _job_line(job),
        **args,
        host=host,
        wait=wait,
        log=wait and not as_json,
    )
    return None if final is None else (final.job, final.run)


def _on_running_engine(op: str, started: Callable[[Any], None], **args: Any) -> Any:
    """Run `op` on the engine serving this workspace, printing the log it streams;
    the final answer (namespaces), or None when no engine serves it here."""
    from types import SimpleNamespace

    from picsellia_tui.engine.control_client import Unavailable, database_hint, request
    from picsellia_tui.engine.logtext import sanitize

    hint = database_hint(STATE["config"], STATE["overrides"])
    if hint is None:
        return None
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    try:
        for event in request(*hint, op, **args):
            kind = event.pop("event", None)
            if kind == "error":
                fail(str(event.get("message")), int(event.get("code", 1)))
            elif kind == "started":
                started(SimpleNamespace(**event["item"]))
            elif kind == "log":
                for text in event["lines"]:
                    print(sanitize(text, keep_colors=color))
                sys.stdout.flush()
            elif kind == "final":
                return SimpleNamespace(**{k: SimpleNamespace(**v) for k, v in event.items()})
    except Unavailable:
        return None  # raised before any answer: nothing was done
    except ConnectionError as exc:
        fail(f"lost the engine while following its answer: {exc}")
    return None


def _launch_here(
    processing: str,
    version: str,
    params: dict[str, str],
    name: str | None,
    host: str | None,
    wait: bool,
    as_json: bool,
) -> tuple[Any, Any]:
    """Launch with an engine of this process's own."""

    async def go(e: Engine) -> Any:
        job = await e.launch(processing, version, params, output_version_name=name, host=host)
        run = job.runs[-1]
        if not as_json:
            _job_line(job)
        if wait:
            if not as_json:
                await _follow_log(e, run.id, timestamps=False)
            final = await e.wait_run(run.id)
        else:
            # Return once it has started: the container (or process) then outlives us.
            final = await e.wait_run(run.id, lambda r: r.status != "pending")
        return await e.job(job.id), final

    result: tuple[Any, Any] = with_engine(go, supervise=True)
    return result


def _print_outcome(job_id: int, run: Any) -> None:
    """The final line of `launch` and `jobs rerun`: one format for both."""
    from picsellia_tui.tui.output import duration

    line = f"job {job_id} run #{run.attempt}: {run.status}"
    if run.duration_s is not None and run.status not in ("pending", "running"):
        line += f" in {duration(run.duration_s)}"
    if run.exit_code is not None:
        line += f" (exit {run.exit_code})"
    print(line)
    if run.status == "failed" and run.error_summary:
        print(run.error_summary.splitlines()[0], file=sys.stderr)


async def _follow_log(e: Engine, run_id: int, timestamps: bool, start: int = 0) -> None:
    """Print a run's log from line `start`, following while it is active."""
    from picsellia_tui.engine.logfollow import follow_records
    from picsellia_tui.engine.logtext import sanitize
    from picsellia_tui.storage.logfile import format_ts

    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    async for batch in follow_records(e, run_id, start):
        for rec in batch:
            text = sanitize(rec.text, keep_colors=color)
            print(f"{format_ts(rec.ts_ns)} {text}" if timestamps else text)
        sys.stdout.flush()


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
    from picsellia_tui.tui.output import emit_json, table

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
    from picsellia_tui.tui.output import duration, emit_json, table, when

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
            await _follow_log(e, r.id, timestamps, start)
        else:
            await _print_once(r.log_path, timestamps, start)

    with_engine(go, supervise=follow)


async def _print_once(path: str, timestamps: bool, start: int) -> None:
    from picsellia_tui.engine.logtext import sanitize
    from picsellia_tui.storage.logfile import LogReader, format_ts

    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    reader = LogReader(Path(path))
    for rec in reader.iter_from(start):
        text = sanitize(rec.text, keep_colors=color)
        print(f"{format_ts(rec.ts_ns)} {text}" if timestamps else text)
    reader.close()


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
    from picsellia_tui.tui.output import emit_json

    def queued(run: Any) -> None:
        if not as_json:
            what = "the image of the previous run" if same_image else f"image {run.image_ref}"
            print(f"job {job_id}: run #{run.attempt} queued ({what})", file=sys.stderr, flush=True)

    async def go(e: Engine) -> Any:
        run = await e.rerun(job_id, same_image=same_image)
        queued(run)
        if wait:
            if not as_json:
                await _follow_log(e, run.id, timestamps=False)
            return await e.wait_run(run.id)
        return await e.wait_run(run.id, lambda r: r.status != "pending")

    served = _on_running_engine(
        "rerun", queued, job_id=job_id, same_image=same_image, wait=wait, log=wait and not as_json
    )
    run = served.run if served is not None else with_engine(go, supervise=True)
    if as_json:
        emit_json(run)
    else:
        _print_outcome(job_id, run)
    if wait:
        raise typer.Exit(EXIT_FOR.get(run.status, 1))


@jobs_app.command("cancel")
def jobs_cancel(job_id: int, as_json: JsonOpt = False) -> None:
    """Cancel the job's active run (SIGTERM, grace period, then SIGKILL)."""
    from picsellia_tui.tui.output import emit_json

    async def go(e: Engine) -> Any:
        run = await e.cancel(job_id)
        with __import__("anyio").move_on_after(e.settings.cancel_grace_seconds + 30):
            run = await e.wait_run(run.id)
        return run

    served = _on_running_engine("cancel", lambda run: None, job_id=job_id)
    run = served.run if served is not None else with_engine(go, supervise=True)
    if as_json:
        emit_json(run)
    else:
        print(f"job {job_id} run #{run.attempt}: {run.status}")


# -- engine and doctor ---------------------------------------------------------------------------


@engine_app.command("serve")
def engine_serve() -> None:
    """Run the engine headless: schedule, supervise and reconcile runs until stopped."""
    import signal

    import anyio

    from picsellia_tui.engine.control import serve_control
    from picsellia_tui.engine.core import Engine

    async def main() -> None:
        async with Engine(settings(), supervise=True) as e, anyio.create_task_group() as tg:
            sock = await tg.start(serve_control, e)
            st = await e.stats()
            print(
                f"engine {e.engine_id} serving {e.settings.database_path} "
                f"({st.running} running, {st.pending} pending"
                f"{f'; commands hand it their launches through {sock}' if sock else ''}); "
                "Ctrl-C stops it (containers keep running)",
                file=sys.stderr,
                flush=True,
            )
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    print(
                        "engine stopping; runs keep going and are adopted at next start",
                        file=sys.stderr,
                    )
                    tg.cancel_scope.cancel()
                    return

    anyio.run(main)


@app.command("doctor")
def doctor(as_json: JsonOpt = False) -> None:
    """Check configuration, database, Docker hosts and processing images."""
    from picsellia_tui.tui.doctor import run_doctor

    ok = run_doctor(settings(), as_json=as_json)
    if not ok:
        raise typer.Exit(1)


@app.command("demo")
def demo(
    open_app: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the app afterwards.")
    ] = True,
    build: Annotated[
        bool, typer.Option("--build/--no-build", help="Build missing processing images.")
    ] = True,
) -> None:
    """Create (or refresh) the demo workspace with real small models, build the
    missing processing images when Docker answers, then open the app."""
    from picsellia_tui.tui.demo import prepare_demo

    s = prepare_demo(STATE["config"], STATE["overrides"], build=build)
    if open_app:
        open_tui(s)


# -- entry point ----------------------------------------------------------------------------------


def main() -> None:
    try:
        # Without standalone mode click returns the code of a typer.Exit.
        rc = app(standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        sys.exit(_report(exc))


def _report(exc: BaseException) -> int:
    """One clear line on stderr, never a traceback (that goes to a file)."""
    # Usage errors: click's, or the copy of click that typer >= 0.2x vendors.
    if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
        exc.show()  # type: ignore[attr-defined]
        return int(exc.exit_code)  # type: ignore[attr-defined]
    if isinstance(exc, CliError):
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    from picsellia_tui.engine.config import ConfigError

    known: tuple[type[BaseException], ...] = (ConfigError,)
    try:
        from picsellia_tui.engine.errors import EngineError
        from picsellia_tui.engine.executors.base import ExecutorError
        from picsellia_tui.storage.blobs import BlobCorrupted
        from picsellia_tui.storage.db import StorageError

        known += (EngineError, ExecutorError, StorageError, BlobCorrupted)
    except ImportError:
        pass
    if isinstance(exc, known):
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"error: {msg}", file=sys.stderr)
        return (
            2
            if type(exc).__name__
            in ("InvalidInput", "NotFound", "Incompatible", "DefinitionError", "ConfigError")
            else 1
        )
    import tempfile
    import traceback

    path = Path(tempfile.gettempdir()) / "picsellia-tui-crash.log"
    with path.open("a") as f:
        traceback.print_exception(exc, file=f)
    first = str(exc).splitlines()[0] if str(exc) else ""
    print(f"error: unexpected {type(exc).__name__}: {first} (details in {path})", file=sys.stderr)
    return 70


if __name__ == "__main__":
    main()
