"""Target 8, the local Picsellia API (docs/picsellia-api.md).

a) One run of an image written with the picsellia SDK downloads a 100 MB model
   file through the API and stores it again (a multipart upload), timed inside the
   run. Baseline: Docker's own way in and out of a container for the same file,
   `put_archive` then `get_archive` (what the run contract's inputs/outputs use).
   Goal: ≤ 1.5x.
b) The cost of one API request from inside a run (a `send_logging` post through
   the relay container and the Unix socket), against the same post from this
   process straight to the API's loopback port.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import anyio

from bench.common import BENCH, Row, bench_settings, emit, tempdir

IMAGE = "picsellia-tui/bench-api-io:1.0.0"
PROC = "bench-api-io"


def archive_roundtrip(path: Path) -> float:
    """put_archive + get_archive of `path` into/out of a container of the image."""
    import docker

    client = docker.from_env()
    c = client.containers.create(
        IMAGE, ["sleep", "300"], labels={"picsellia-tui.bench": "t8"}, network_disabled=True
    )
    try:
        c.start()
        t0 = time.perf_counter()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(path, arcname=path.name)
        buf.seek(0)
        assert c.put_archive("/tmp", buf.getvalue())
        stream, _ = c.get_archive(f"/tmp/{path.name}")
        size = sum(len(chunk) for chunk in stream)
        elapsed = time.perf_counter() - t0
        assert size >= path.stat().st_size
        return elapsed
    finally:
        c.remove(force=True)


async def api_run(root: Path, model: Path, requests: int) -> dict[str, float]:
    from picsellia_tui.engine.core import Engine
    from picsellia_tui.storage.logfile.reader import LogReader

    settings = bench_settings(root)
    shutil.copytree(BENCH / "proc_api_io", settings.processings_dir / PROC)
    async with Engine(settings, supervise=True) as e:
        await e.import_version("big", "v1", [model], framework="onnx")
        job = await e.launch(PROC, "big/v1", {"requests": str(requests)})
        run = await e.wait_run(job.runs[0].id)
        texts = [r.text for r in LogReader(Path(run.log_path)).records(0, 100_000)]
        if run.status != "succeeded":
            raise RuntimeError(f"bench run failed: {run.error_summary}")
        out = {}
        for t in texts:
            if t.startswith("BENCHTIME "):
                _, key, value = t.split()
                out[key] = float(value)
        # The same post from this process straight to the API's loopback port.
        service = e.api.service
        assert service is not None and service.endpoint is not None
        out["direct"] = await anyio.to_thread.run_sync(
            lambda: direct_requests(e, service, requests)
        )
        return out


def direct_requests(e: object, service: object, n: int) -> float:
    """Per-request time of a /logging post on loopback, with a grant made for it."""
    import requests as http

    from picsellia_tui.engine.picsellia_api.server import ApiService

    assert isinstance(service, ApiService) and service.endpoint is not None
    token = service.grant(
        run_id=10**9, job_id=1, target_version_id=1, model_id=1, created_at="bench"
    )
    job = service.ids.encode("job", 1)
    url = f"{service.endpoint.tcp_url}/api/v2/job/{job}/logging"
    s = http.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    s.headers["Content-type"] = "application/json"
    t0 = time.perf_counter()
    for i in range(n):
        s.post(
            url, data=f'{{"log": "line {i}", "part": "bench", "line_nb": {i}}}'
        ).raise_for_status()
    elapsed = (time.perf_counter() - t0) / n
    service.revoke(10**9)
    return elapsed


def main(quick: bool) -> list[Row]:
    subprocess.run(
        ["docker", "build", "-q", "-t", IMAGE, str(BENCH / "proc_api_io")],
        check=True,
        capture_output=True,
    )
    size_mb = 100
    requests = 200 if quick else 1000
    with tempdir("api") as root:
        model = root / "model.onnx"
        with model.open("wb") as f:
            for _ in range(size_mb):
                f.write(os.urandom(1024 * 1024))
        base = archive_roundtrip(model)
        got = anyio.run(api_run, root, model, requests)
    io_s = got["download"] + got["upload"]
    ratio = io_s / base
    req_ratio = got["request"] / got["direct"]
    return [
        Row(
            "8a picsellia api: 100 MB down+up",
            f"put_archive+get_archive {base:.2f} s",
            f"{io_s:.2f} s (down {got['download']:.2f}, up {got['upload']:.2f})",
            ratio,
            "<= 1.5x",
            ratio <= 1.5,
            "one run of an image using the picsellia SDK; the upload is multipart (>25 MiB); "
            f"the SDK's own CPU in the run: down {got['download_cpu']:.2f} s, "
            f"up {got['upload_cpu']:.2f} s",
        ),
        Row(
            "8b picsellia api: one request",
            f"loopback post {got['direct'] * 1000:.2f} ms",
            f"from the run {got['request'] * 1000:.2f} ms",
            req_ratio,
            "-",
            None,
            f"{requests} send_logging posts through the relay container and the Unix socket",
        ),
    ]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    emit(main(ap.parse_args().quick))
