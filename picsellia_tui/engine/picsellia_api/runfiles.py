"""A run's own files over the local API: the file channel of runs without a shared
disk (a Swarm task on any node of a cluster).

The executor that starts such a run writes, in the run's files folder on the
engine's machine (`ApiAccess.files_dir`, 0700), `context.json` and `inputs.json`
(the input paths and where their bytes are in the blob store). The run's staging
step, holding the run's token, then:

- `GET /ptui/run/files.tar`: a tar of `{context.json, inputs/..., outputs/}` for `/picsellia`
  (the same tar the Docker executor puts into a container), streamed from the blobs;
- `PUT /ptui/run/outputs.tar`: a tar of `outputs/...`, kept as `outputs.tar` in the
  folder until the executor collects it (through `archives.safe_extract`, like
  Docker's `get_archive`), at most `MAX_OUTPUTS` bytes.

Only the run's grant opens its own folder; a token of another run or an ended run
is refused like every other route.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from picsellia_tui.engine.executors.base import InputFile
from picsellia_tui.engine.picsellia_api.grants import Grant
from picsellia_tui.engine.picsellia_api.runfolder import (
    CONTEXT,
    INPUTS,
    MAX_OUTPUTS,
    OUTPUTS,
    files_dir,
)
from picsellia_tui.engine.picsellia_api.store import ApiError

_WRITE_CHUNK = 1024 * 1024


class RunFiles:
    def __init__(self, scratch: Path, max_bytes: int = MAX_OUTPUTS) -> None:
        self.scratch = scratch
        self.max_bytes = min(max_bytes, MAX_OUTPUTS)

    def _folder(self, grant: Grant) -> Path:
        folder = files_dir(self.scratch, grant.run_id)
        if not (folder / CONTEXT).is_file():
            raise ApiError(404, "this run has no files served by the engine")
        return folder

    async def files_tar(self, request: Request, grant: Grant) -> Response:
        from picsellia_tui.engine.executors.docker_executor import check_inputs, staging_stream

        folder = self._folder(grant)
        context = (folder / CONTEXT).read_bytes()
        manifest = json.loads((folder / INPUTS).read_text())
        inputs = [InputFile(str(m["path"]), Path(m["source"])) for m in manifest]
        try:
            check_inputs(inputs)  # before the body starts: a clear error, not a cut stream
        except Exception as exc:
            raise ApiError(409, str(exc)) from None
        body: Iterator[bytes] = staging_stream(context, inputs)
        return StreamingResponse(body, media_type="application/x-tar")

    async def outputs_tar(self, request: Request, grant: Grant) -> Response:
        folder = self._folder(grant)
        tmp = folder / (OUTPUTS + ".part")
        size = 0
        async with await anyio.open_file(tmp, "wb") as out:
            held: list[bytes] = []
            n = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_bytes:
                    await out.aclose()
                    tmp.unlink(missing_ok=True)
                    raise ApiError(413, "outputs over the engine's limit")
                held.append(chunk)
                n += len(chunk)
                if n >= _WRITE_CHUNK:
                    await out.write(b"".join(held))
                    held, n = [], 0
            if held:
                await out.write(b"".join(held))
        os.replace(tmp, folder / OUTPUTS)
        return Response(status_code=204)
