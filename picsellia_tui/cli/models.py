"""`picsellia-tui models import|list|show`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from picsellia_tui.cli.context import JsonOpt, with_engine
from picsellia_tui.cli.errors import fail

models_app = typer.Typer(
    help="Models and their versions: import, list, show.", no_args_is_help=True
)


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

    from picsellia_tui.cli.output import emit_json, size

    model, sep, version = ref.partition("/")
    if not sep or not model or not version:
        fail(f"{ref!r}: name the version as MODEL/VERSION")
    labels = list(label or [])
    if labels_file is not None:
        try:
            text = labels_file.read_text(encoding="utf-8")
            more = _json.loads(text) if text.lstrip().startswith("[") else text.split()
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            fail(f"--labels-file {labels_file}: {why.splitlines()[0] if why else exc}", 2)
        if not isinstance(more, list) or not all(isinstance(x, str) for x in more):
            fail(f"--labels-file {labels_file}: a JSON list of strings, or one label a line", 2)
        labels += more
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
    from picsellia_tui.cli import readcmds

    readcmds.models_list(as_json)


@models_app.command("show")
def models_show(
    ref: Annotated[str, typer.Argument(metavar="MODEL/VERSION|ID")], as_json: JsonOpt = False
) -> None:
    """Show a version: files, labels, metrics, lineage."""
    from picsellia_tui.cli import readcmds

    readcmds.models_show(ref, as_json)
