"""A private processing: copies the input version's files to a new version and tags it.

The run contract in short (docs/run-contract.md has it all):

- env ``PICSELLIA_CONTEXT`` is the path of ``context.json``: job and run ids, the
  processing, its ``parameters``, the ``target`` version (model, version, framework,
  labels, files) and ``paths``;
- ``paths.inputs`` holds the target version's files, ``paths.outputs`` is where the new
  version's files go; read both from context.json, never hard-code them;
- ``outputs/result.json`` (optional) gives the new version's framework, tags, metrics and
  labels;
- a secret parameter arrives as a file: its path is in the environment variable
  <NAME>_FILE (``/run/secrets/<NAME>``); with ``secrets_in_env = true`` under
  ``[constraints]``, as the variable <NAME> instead;
- print progress lines (flushed); exit status 0 means succeeded, anything else failed
  and the last lines of the log become the error summary.

Replace `process` with your own work; the rest is the contract.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

DEFAULT_CONTEXT = "/picsellia/context.json"


def log(message: str) -> None:
    print(message, flush=True)


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return 2


def process(context: dict[str, Any], inputs: Path, outputs: Path) -> dict[str, Any]:
    """Do the work; return what goes to result.json."""
    tag = str(context.get("parameters", {}).get("tag") or "processed")
    files = sorted(p for p in inputs.rglob("*") if p.is_file())
    if not files:
        raise FileNotFoundError(f"the input version has no files (looked in {inputs})")
    total = 0
    for number, source in enumerate(files, start=1):
        relative = source.relative_to(inputs)
        destination = outputs / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
        size = source.stat().st_size
        total += size
        log(f"[{number}/{len(files)}] copied {relative.as_posix()} ({size:,} bytes)")
    return {"tags": [tag], "metrics": {"files": len(files), "size_bytes": total}}


def main() -> int:
    context_path = Path(os.environ.get("PICSELLIA_CONTEXT") or DEFAULT_CONTEXT)
    try:
        context = json.loads(context_path.read_text(encoding="utf-8"))
        inputs = Path(context["paths"]["inputs"])
        outputs = Path(context["paths"]["outputs"])
    except (OSError, ValueError, KeyError) as exc:
        return fail(f"cannot read the run context {context_path}: {exc}")
    outputs.mkdir(parents=True, exist_ok=True)
    target = context.get("target", {})
    log(
        f"{context.get('processing', {}).get('name', 'processing')}: "
        f"{target.get('model', '?')} {target.get('version', '?')} "
        f"-> {context.get('output_version_name', 'new version')}"
    )
    try:
        result = process(context, inputs, outputs)
    except FileNotFoundError as exc:
        return fail(str(exc))
    (outputs / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    log(f"result: {json.dumps(result)}")
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
