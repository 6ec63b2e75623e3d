"""A run's spec: what its container (or process) gets: image, command, inputs,
context.json, environment (secrets as the processing asks), labels and limits."""

from __future__ import annotations

import json
from pathlib import Path

from picsellia_tui.engine.config import Settings
from picsellia_tui.engine.executors.base import ApiAccess, InputFile, Limits, RunSpec
from picsellia_tui.engine.workspace import Workspace
from picsellia_tui.storage.domain import parse_memory
from picsellia_tui.storage.models import Job, Model, ModelVersion, Run, VersionFile
from picsellia_tui.storage.params import secret_env_name


def build_spec(
    ws: Workspace,
    settings: Settings,
    engine_id: str,
    run: Run,
    job: Job,
    version: ModelVersion,
    files: list[VersionFile],
    image: str,
    key: str,
    api: tuple[ApiAccess, dict[str, str]] | None = None,
) -> RunSpec:
    """`api`: where the run reaches the local Picsellia API and the environment
    it gets for it (api_token, organization_*, job_id as a UUID)."""
    assert run.id is not None and job.id is not None
    snap = job.processing_snapshot
    model = None
    with ws.db.read() as s:
        model = s.get(Model, version.model_id)
    assert model is not None
    secrets = ws.decrypt(job.secrets_enc)
    inputs = []
    for f in files:
        ws.blobs.verify(f.sha256)
        inputs.append(InputFile(f.path, ws.blobs.path_for(f.sha256)))
    context = {
        "job_id": str(job.id),
        "run_id": str(run.id),
        "attempt": run.attempt,
        "organization_id": ws.organization_id,
        "organization": settings.organization,
        "processing": {k: snap.get(k) for k in ("name", "version", "task", "output_mode")},
        "parameters": job.parameters,
        "target": {
            "type": "model_version",
            "model": model.name,
            "version": version.name,
            "framework": version.framework,
            "labels": version.labels,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in files],
        },
        "output_version_name": job.output_version_name,
        "paths": {"inputs": "/picsellia/inputs", "outputs": "/picsellia/outputs"},
    }
    env = {
        "job_id": str(job.id),
        "run_id": str(run.id),
        "organization_id": ws.organization_id,
        "PICSELLIA_CONTEXT": "/picsellia/context.json",
    }
    if api is not None:
        env.update(api[1])
    cons = snap.get("constraints", {})
    named = {secret_env_name(k): v for k, v in secrets.items()}
    if cons.get("secrets_in_env"):
        env.update(named)  # the processing asked: `docker inspect` shows them
        named = {}
    cfg = settings
    mem = cons.get("memory") or cfg.default_memory
    src = snap.get("source_dir")
    return RunSpec(
        # The executor labels the container with it and `find(key)` looks for it:
        # the key (workspace + run), not the bare run id, which every workspace has.
        run_id=key,
        job_id=str(job.id),
        attempt=run.attempt,
        name=f"ptui-{key}",
        image=image,
        command=list(snap.get("command") or []),
        entrypoint=list(snap["entrypoint"]) if snap.get("entrypoint") else None,
        env=env,
        context_json=json.dumps(context, indent=2).encode(),
        inputs=inputs,
        labels={
            "picsellia-tui.run_id": key,
            "picsellia-tui.job_id": str(job.id),
            "picsellia-tui.workspace": ws.workspace_id,
            "picsellia-tui.engine_id": engine_id,
        },
        limits=Limits(
            cpu=cons.get("cpu") or cfg.default_cpu,
            memory_bytes=parse_memory(mem) if mem else None,
            pids=cfg.pids_limit,
            gpu=bool(cons.get("gpu")),
            network=bool(cons.get("network")),
            writable_rootfs=bool(cons.get("writable_rootfs")),
            capabilities=tuple(cons.get("capabilities") or ()),
        ),
        processing_dir=Path(src) if src else None,
        secret_files=named,
        api=api[0] if api is not None else None,
    )
