"""`picsellia-tui processings list|show|create|update|remove|build`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from picsellia_tui.cli.context import JsonOpt, with_engine
from picsellia_tui.cli.errors import fail
from picsellia_tui.humanize import first_line

if TYPE_CHECKING:
    from picsellia_tui.engine.core import Engine

processings_app = typer.Typer(
    help="Processings: list, show, create, update, remove, build.", no_args_is_help=True
)


@processings_app.command("list")
def processings_list(as_json: JsonOpt = False) -> None:
    """List processings, grouped by target type."""
    from picsellia_tui.cli import readcmds

    readcmds.processings_list(as_json)


@processings_app.command("show")
def processings_show(name: str, as_json: JsonOpt = False) -> None:
    """Show a processing's definition and parameters."""
    from picsellia_tui.cli import readcmds

    readcmds.processings_show(name, as_json)


@processings_app.command("create")
def processings_create(
    folder: Annotated[
        Path | None, typer.Argument(help="Folder with processing.toml + Dockerfile.")
    ] = None,
    from_template: Annotated[
        str | None,
        typer.Option(
            "--from-template",
            metavar="[KIND] NAME",
            help="Scaffold a new folder NAME from a template: `--from-template NAME`, or "
            "`--from-template picsellia-sdk NAME` for one written with Picsellia's SDK.",
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
    picsellia_api: Annotated[
        bool,
        typer.Option(
            "--picsellia-api",
            help="With --image: serve it the local Picsellia API (an image written with "
            "Picsellia's SDK runs unchanged; output mode none unless given).",
        ),
    ] = False,
    output_mode: Annotated[
        str | None, typer.Option("--output-mode", help="Default: new_model_version.")
    ] = None,
    description: Annotated[str, typer.Option("--description")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create a private processing: from a folder, from the template, or from an
    existing image. (An existing one changes with `processings update`.)"""
    from picsellia_tui.cli.output import emit_json
    from picsellia_tui.engine import catalog

    async def go(e: Engine) -> Any:
        if image is not None:
            return await e.create_processing(
                definition=catalog.image_definition(
                    image,
                    name=name,
                    task=task,
                    command=command,
                    entrypoint=entrypoint,
                    frameworks=list(framework or []),
                    output_mode=output_mode,
                    description=description,
                    picsellia_api=picsellia_api,
                )
            )
        if from_template:
            # `--from-template picsellia-sdk NAME` (a kind, then the name) or the
            # original `--from-template NAME` (the default template).
            kind, new = (from_template, folder) if folder is not None else ("default", None)
            new_name = str(new) if new is not None else from_template
            p = await e.create_processing(template=new_name, dest=dest, template_kind=kind)
            print(
                f"scaffolded {p.source_dir}: edit main.py, then "
                f"`picsellia-tui processings build {new_name}`",
                file=sys.stderr,
            )
            return p
        if folder is None:
            fail("give a FOLDER, --from-template NAME or --image IMAGE --name NAME")
        return await e.create_processing(folder)

    p = with_engine(go)
    if as_json:
        emit_json(p)
    else:
        print(f"private processing {p.name} {p.version} saved (image {p.image})")


@processings_app.command("update")
def processings_update(
    name: str,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would change.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Update a private processing from its folder: re-read its processing.toml,
    print what changes (version, image, parameters, constraints...), save it."""
    from picsellia_tui.cli.output import emit_json, table

    async def go(e: Engine) -> tuple[Any, Any]:
        plan = await e.plan_processing_update(name)
        if dry_run or not plan.changes:
            return plan, None
        return plan, await e.update_processing(name, expect_hash=plan.definition_hash)

    plan, saved = with_engine(go)
    if as_json:
        emit_json({"changes": plan.changes, "saved": saved is not None, "processing": saved})
        return
    if not plan.changes:
        print(f"{plan.name}: nothing to update ({plan.folder}/processing.toml says what is saved)")
        return
    table(
        ["changes", "saved now", "processing.toml"],
        [[c.what, c.before, c.after] for c in plan.changes],
    )
    n = len(plan.changes)
    if saved is None:
        print(f"{plan.name}: {n} change{'s' if n != 1 else ''} not saved (--dry-run)")
    else:
        print(f"{saved.name} {saved.version} updated ({n} change{'s' if n != 1 else ''})")


@processings_app.command("remove")
def processings_remove(name: str, as_json: JsonOpt = False) -> None:
    """Remove a private processing: it leaves the list and cannot be launched; its
    jobs and their history stay. Refused while one of its runs is active."""
    from picsellia_tui.cli.output import emit_json

    p = with_engine(lambda e: e.remove_processing(name))
    if as_json:
        emit_json(p)
    else:
        print(f"{p.name} removed; its jobs stay in the history (its folder and image are kept)")


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
                print(f"{name}: build failed: {first_line(exc)}", file=sys.stderr, flush=True)
        return failed

    failed = with_engine(go)
    if failed:
        fail(f"{failed} image(s) failed to build")
