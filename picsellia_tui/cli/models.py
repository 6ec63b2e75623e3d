"""`picsellia-tui models import|list|show`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
    from picsellia_tui.cli.output import emit_json, size, table

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
    from picsellia_tui.cli.output import emit_json, size, table, when

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
