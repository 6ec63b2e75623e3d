"""The read commands themselves (`jobs list/show/logs`, `models list/show`,
`processings list/show`): plain functions without typer, so that the fast path
(cli/fast.py) runs them without importing the typer command line (typer imports
pydantic to parse), and the typer commands call the same functions.

Data comes from cli/reads.py (the serving engine, else the light read path, else
an engine of this process's own); the output is the same whichever answers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from picsellia_tui.cli.errors import fail
from picsellia_tui.cli.logs import follow_log, print_once
from picsellia_tui.cli.output import duration, emit_json, size, table, when
from picsellia_tui.cli.reads import ns, read
from picsellia_tui.cli.remote import follow_on_engine
from picsellia_tui.cli.state import with_engine

if TYPE_CHECKING:
    from picsellia_tui.engine.core import Engine


def jobs_list(status: str | None, limit: int, page: int, as_json: bool) -> None:
    """List jobs, newest first, one page at a time."""
    statuses = ("pending", "running", "succeeded", "failed", "killed")
    if status is not None and status not in statuses:
        fail(f"--status {status[:40]!r}: one of {', '.join(statuses)}", 2)
    offset = (page - 1) * limit
    data, total = read(
        [
            ("jobs", {"limit": limit, "offset": offset, "status": status}),
            ("count_jobs", {"status": status}),
        ],
        lambda r: list(r.jobs_page(limit=limit, offset=offset, status=status)),
    )
    if as_json:
        emit_json(data)
        return
    rows = ns(data)
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


def jobs_show(job_id: int, as_json: bool) -> None:
    """Show a job, its parameters (secrets masked) and its run history."""
    (data,) = read([("job", {"job_id": job_id})], lambda r: [r.job(job_id)])
    if as_json:
        emit_json(data)
        return
    j = ns(data)
    print(f"job {j.id}: {j.processing} on {j.target}  [{j.status}]")
    print(f"  launched by {j.launched_by} at {when(j.created_at)} on {j.executor}:{j.host}")
    print(f"  image {j.image_ref}")
    print(f"  output version: {output_label(j)}")
    print("  parameters: " + (", ".join(f"{k}={v}" for k, v in j.parameters.items()) or "-"))
    print()
    # The node column only for a job whose runs went to a cluster (swarm).
    nodes = any(r.node for r in j.runs)
    table(
        ["attempt", "status", "by", "started", "duration", "exit", "image", "output version"]
        + (["node"] if nodes else []),
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
            + ([r.node or "-"] if nodes else [])
            for r in j.runs
        ],
    )
    last = j.runs[-1] if j.runs else None
    if last and last.status == "pending" and last.error_summary:
        print(f"\nwaiting: {last.error_summary}")
    if last and last.error_summary and last.status in ("failed", "killed"):
        from picsellia_tui.engine.logtext import strip_ansi

        print("\nerror summary of the last run:")
        # Line by line, as the terminal would leave each: a stored summary holding a
        # cursor move or a lone carriage return must not glue the next line to it.
        for line in last.error_summary.rstrip("\n").split("\n"):
            print(strip_ansi(line))


def jobs_logs(
    job_id: int, run: int | None, follow: bool, timestamps: bool, tail: int | None
) -> None:
    """Print a run's log (control sequences removed)."""
    (job,) = read([("job", {"job_id": job_id})], lambda r: [r.job(job_id)])
    runs = [r for r in job["runs"] if run is None or r["attempt"] == run]
    if not runs:
        fail(f"job {job_id} has no run #{run}")
    r = runs[-1]
    if follow and r["status"] in ("pending", "running"):
        # The engine supervising the run streams it until the run ends (one is
        # started in the background when none serves the workspace).
        if follow_on_engine(job_id, r["attempt"], tail, timestamps) is not None:
            return

        async def go(e: Engine) -> None:
            from picsellia_tui.storage.logfile.reader import LogReader

            start = 0
            if tail is not None:
                reader = LogReader(Path(r["log_path"]))
                start = max(0, len(reader) - tail)
                reader.close()
            await follow_log(e, r["id"], timestamps, start)

        with_engine(go, supervise=True)
        return
    print_once(r["log_path"], timestamps, tail=tail)


def models_list(as_json: bool) -> None:
    """List model versions."""
    (data,) = read([("versions", {})], lambda r: [r.versions()])
    if as_json:
        emit_json(data)
        return
    rows = ns(data)
    table(
        ["id", "model/version", "framework", "tags", "size", "origin job", "parent", "created"],
        [
            [
                v.id,
                f"{v.model}/{v.name}",
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


def models_show(ref: str, as_json: bool) -> None:
    """Show a version: files, labels, metrics, lineage."""
    (data,) = read([("version", {"ref": ref})], lambda r: [r.version(ref)])
    if as_json:
        emit_json(data)
        return
    v = ns(data)
    print(
        f"{v.model}/{v.name} (id {v.id})  framework {v.framework}  {size(v.size_bytes)}  "
        f"created {when(v.created_at)} by {v.created_by or '-'}"
    )
    print(f"  tags: {', '.join(v.tags) or '-'}")
    print(f"  labels: {', '.join(v.labels) or '-'}")
    print(f"  lineage: parent {v.parent or '-'}, origin job {v.origin_job_id or '-'}")
    if v.metrics:
        print("  metrics: " + ", ".join(f"{k}={_num(x)}" for k, x in v.metrics.items()))
    table(["file", "size", "sha256"], [[f.path, size(f.size), f.sha256] for f in v.files])


def processings_list(as_json: bool) -> None:
    """List processings, grouped by target type."""
    (data,) = read([("processings", {})], lambda r: [r.processings()], catalog=True)
    if as_json:
        emit_json(data)
        return
    rows = ns(data)
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


def processings_show(name: str, as_json: bool) -> None:
    """Show a processing's definition and parameters."""
    (data,) = read([("processing", {"name": name})], lambda r: [r.processing(name)], catalog=True)
    if as_json:
        emit_json(data)
        return
    p = ns(data)
    print(f"{p.name} {p.version} ({p.visibility}{', owner ' + p.owner if p.owner else ''})")
    print(f"  {p.description}")
    api = "   picsellia api: on" if p.picsellia_api else ""
    print(f"  task: {p.task}   target: {p.target_type}   output: {p.output_mode}{api}")
    run = " ".join(p.command) or "(the image's own)"
    entry = f"   entrypoint: {' '.join(p.entrypoint)}" if p.entrypoint else ""
    print(f"  image: {p.image}   command: {run}{entry}")
    c = p.constraints
    print(
        f"  frameworks: {', '.join(c.frameworks) or 'any'}   required files: "
        f"{', '.join(c.required_files) or '-'}   cpu: {c.cpu or '-'}   memory: {c.memory or '-'}"
        f"   gpu: {c.gpu}   network: {c.network}"
    )
    caps = getattr(c, "capabilities", None)
    asked = [
        *(["writable root file system"] if getattr(c, "writable_rootfs", False) else []),
        *([f"capabilities {', '.join(caps)}"] if caps else []),
        *(["secrets in the environment"] if getattr(c, "secrets_in_env", False) else []),
    ]
    if asked:  # beyond the default confinement (docs/run-contract.md)
        print(f"  asks for: {'; '.join(asked)}")
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


def output_label(j: Any) -> str:
    """As JobView.output_label: the new version's name, or what the job does instead."""
    if j.output_mode == "update_input":
        return "(updates the input)"
    if j.output_mode == "none" and j.picsellia_api:
        return "(versions it makes via the Picsellia API)"
    if j.output_mode == "none":
        return "(no output version)"
    return str(j.output_version_name or "(a new version)")


def _run_image(r: Any) -> str:
    """A run's short digest, marked where it differs from the run before."""
    if not r.short_digest:
        return "-"
    pinned = " (pinned)" if (r.image_ref or "").rpartition("@")[2].startswith("sha256:") else ""
    return f"{r.short_digest}{' (changed)' if r.image_changed else ''}{pinned}"


def _range(lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return "-"
    # One bound may be missing ("min = 0" alone): only a number takes the format.
    return f"{'' if lo is None else format(lo, 'g')}..{'' if hi is None else format(hi, 'g')}"


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)
