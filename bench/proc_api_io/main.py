"""Times, inside the run, what a Picsellia processing does with a big model file:
download it and store it again through the SDK; then many small requests."""

import os
import tempfile
import time
from pathlib import Path

from picsellia import Client


def main() -> None:
    client = Client(
        api_token=os.environ["api_token"],
        host=os.environ["host"],
        organization_id=os.environ["organization_id"],
    )
    job = client.get_job_by_id(os.environ["job_id"])
    ctx = job.sync()["processing_job"]
    version = client.get_model_version_by_id(ctx["target_id"])
    work = Path(tempfile.mkdtemp())
    f = version.list_files()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    f.download(work)
    print(f"BENCHTIME download {time.perf_counter() - t0:.4f}", flush=True)
    # The SDK's own CPU (it writes the body in 4 KiB chunks): the floor of the download.
    print(f"BENCHTIME download_cpu {time.process_time() - c0:.4f}", flush=True)
    new = client.get_model_by_id(version.origin_id).create_version()
    t0, c0 = time.perf_counter(), time.process_time()
    new.store("model", work / f.filename)
    print(f"BENCHTIME upload {time.perf_counter() - t0:.4f}", flush=True)
    print(f"BENCHTIME upload_cpu {time.process_time() - c0:.4f}", flush=True)
    n = int(ctx["parameters"]["requests"])
    t0 = time.perf_counter()
    for i in range(n):
        job.send_logging(f"line {i}", "bench")
    print(f"BENCHTIME request {(time.perf_counter() - t0) / n:.6f}", flush=True)


if __name__ == "__main__":
    main()
