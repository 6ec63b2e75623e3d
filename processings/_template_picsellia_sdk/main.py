"""A processing written with Picsellia's SDK.

It reads what every Picsellia processing reads from its environment (api_token,
host, organization_id or organization_name, job_id) and talks to the platform only
through the SDK: the same image runs on Picsellia and on picsellia-tui.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

from picsellia import Client
from picsellia.types.enums import JobRunStatus


def connect() -> Client:
    return Client(
        api_token=os.environ["api_token"],
        host=os.environ.get("host", "https://app.picsellia.com"),
        organization_id=os.environ.get("organization_id") or None,
        organization_name=os.environ.get("organization_name") or None,
    )


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def run(client: Client, job) -> None:  # type: ignore[no-untyped-def]
    context = job.sync()["processing_job"]
    params = context.get("parameters") or {}
    source = client.get_model_version_by_id(context["target_id"])
    work = Path(tempfile.mkdtemp())

    job.send_logging("--#--Download", "main")
    files = source.list_files()
    for i, f in enumerate(files, 1):
        f.download(work)
        job.send_logging(f"\r{i}/{len(files)} files downloaded", "main", special="progress")
    job.send_logging(f"{len(files)} file(s) of {source.origin_name}/{source.name}", "main")
    if params.get("fail"):
        raise RuntimeError("asked to fail")

    job.send_logging("--#--Store", "main")
    model = client.get_model_by_id(source.origin_id)
    new = model.create_version(framework=source.framework)
    manifest = {}
    for f in files:
        path = work / f.filename
        manifest[f.name] = {"filename": f.filename, "sha256": sha256(path)}
        new.store(f.name, path)
        job.send_logging(f"stored {f.name} ({path.stat().st_size} bytes)", "main")
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
    new.store("manifest", work / "manifest.json")
    job.send_logging(f"new version {new.name}: {len(files) + 1} file(s)", "main")


def main() -> int:
    client = connect()
    job = client.get_job_by_id(os.environ["job_id"])
    job.update_job_run_with_status(JobRunStatus.RUNNING)
    try:
        run(client, job)
    except Exception:
        for line in traceback.format_exc().splitlines():
            job.send_logging(line, "main")
        traceback.print_exc()
        job.update_job_run_with_status(JobRunStatus.FAILED)
        return 1
    job.update_job_run_with_status(JobRunStatus.SUCCEEDED)
    return 0


if __name__ == "__main__":
    sys.exit(main())
