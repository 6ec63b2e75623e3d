"""An engine in its own process, for the reliability suite.

    python tests/reliability/engine_worker.py CONFIG.json

CONFIG (JSON):
  settings     Settings as JSON (helpers.settings_json)
  engine_id    optional engine id
  crash        {"point": NAME, "after": N}: SIGKILL this process the N-th time the
               point is reached (see POINTS); `marker` gets the point's name first
  keep         true: never remove containers / run folders (the test compares
               `docker logs` with the stored log, then cleans up itself)
  started      a file written once the engine is up
  launches     [{"processing", "version", "params"}] launched at start
  ops          {"seed", "launches", "reruns", "cancels", "go", "out"}: wait for the
               `go` file, then launch / re-run / cancel at random among all jobs of
               the database, one JSON line per operation in `out`
  record       JSON lines: every supervision and every executor start of this engine
  stop         exit cleanly once this file exists

The hooks wrap functions of this process only (monkeypatching): nothing in the
engine knows about them.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402

from picsellia_tui.engine import catalog  # noqa: E402
from picsellia_tui.engine.config import Settings  # noqa: E402
from picsellia_tui.engine.core import Engine  # noqa: E402
from picsellia_tui.engine.errors import EngineError, RerunRefused  # noqa: E402
from picsellia_tui.engine.executors import archives, process  # noqa: E402
from picsellia_tui.engine.supervisor import RunSupervisor  # noqa: E402
from picsellia_tui.storage import repo  # noqa: E402
from picsellia_tui.storage.domain import RunStatus  # noqa: E402
from picsellia_tui.storage.logfile import record, writer  # noqa: E402

CFG: dict[str, Any] = json.loads(Path(sys.argv[1]).read_text())
_hits = {"n": 0}


def _die(what: str) -> None:
    marker = CFG.get("marker")
    if marker:
        Path(marker).write_text(what)
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # never reached


def _reached(point: str, amount: int = 1) -> bool:
    crash = CFG.get("crash") or {}
    if crash.get("point") != point:
        return False
    _hits["n"] += amount
    return _hits["n"] >= int(crash.get("after", 1))


def _record(**row: Any) -> None:
    path = CFG.get("record")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({**row, "t": time.time()}) + "\n")


# ------------------------------------------------------------------------------ hooks


def install_hooks() -> None:
    from picsellia_tui.engine.executors import docker_executor

    DE = docker_executor.DockerExecutor

    orig_start = DE.start

    async def start(self: Any, spec: Any) -> str:
        if _reached("before-start"):
            _die("before-start")
        ref = await orig_start(self, spec)
        if _reached("after-start"):
            _die("after-start")
        return ref

    DE.start = start  # type: ignore[method-assign]

    orig_create = DE._create

    def create(self: Any, spec: Any, image: Any, relay: str | None = None) -> str:
        cid = orig_create(self, spec, image, relay)
        if _reached("after-create"):
            _die("after-create")
        return cid

    DE._create = create  # type: ignore[method-assign]

    orig_add_run = repo.add_run

    def add_run(s: Any, job: Any, **kw: Any) -> Any:
        run = orig_add_run(s, job, **kw)
        if _reached("launch-tx"):
            s.flush()  # job and run written in the open transaction, not committed
            _die("launch-tx")
        return run

    repo.add_run = add_run  # type: ignore[assignment]

    orig_transition = repo.transition

    def transition(s: Any, run_id: int, new: RunStatus, **kw: Any) -> Any:
        run = orig_transition(s, run_id, new, **kw)
        point = {
            RunStatus.RUNNING: "running-tx",
            RunStatus.SUCCEEDED: "ingest-tx",
            RunStatus.FAILED: "fail-tx",
        }.get(new)
        if point and _reached(point):
            s.flush()  # the changes are in the open IMMEDIATE transaction, not committed
            _die(point)
        return run

    repo.transition = transition  # type: ignore[assignment]

    orig_append = writer.LogWriter.append

    def append(self: Any, lines: Any) -> int:
        lines = list(lines)
        crash = CFG.get("crash") or {}
        if crash.get("point") == "mid-log-torn" and lines and _reached("mid-log-torn", len(lines)):
            # Half of this batch reaches the data file, the index never: a torn write.
            data = b"".join(record.encode_record(ln.ts_ns, ln.stream, ln.text) for ln in lines)
            os.write(self._fd, data[: max(1, len(data) // 2)])
            _die("mid-log-torn")
        if crash.get("point") == "mid-log" and lines and _reached("mid-log", len(lines)):
            _die("mid-log")
        return orig_append(self, lines)

    writer.LogWriter.append = append  # type: ignore[method-assign]

    orig_open_new = archives._open_new

    def open_new(path: Path) -> int:
        fd = orig_open_new(path)
        if _reached("in-collect"):
            _die("in-collect")
        return fd

    archives._open_new = open_new

    orig_store = catalog.store_files

    def store_files(ws: Any, files: Any, quota: Any = None) -> Any:
        out = orig_store(ws, files, quota)
        if _reached("after-store"):
            _die("after-store")
        return out

    catalog.store_files = store_files

    orig_cleanup = RunSupervisor._cleanup

    async def cleanup(self: Any, ex: Any, ref: str, failed: bool, **kw: Any) -> None:
        if _reached("before-cleanup"):
            _die("before-cleanup")
        if not CFG.get("keep"):
            await orig_cleanup(self, ex, ref, failed, **kw)

    RunSupervisor._cleanup = cleanup  # type: ignore[method-assign]

    orig_supervise = RunSupervisor.supervise

    async def supervise(self: Any, run_id: int) -> None:
        _record(ev="supervise", engine=self.rt.engine_id, run=run_id)
        await orig_supervise(self, run_id)

    RunSupervisor.supervise = supervise  # type: ignore[method-assign]

    orig_pstart = process.ProcessExecutor._start

    def pstart(self: Any, spec: Any) -> str:
        _record(ev="start", run=int(spec.env["run_id"]), engine=CFG.get("engine_id"))
        return orig_pstart(self, spec)

    process.ProcessExecutor._start = pstart  # type: ignore[method-assign]

    orig_dstart = DE._start_sync

    def dstart(self: Any, spec: Any) -> str:
        _record(ev="start", run=int(spec.env["run_id"]), engine=CFG.get("engine_id"))
        return orig_dstart(self, spec)

    DE._start_sync = dstart  # type: ignore[method-assign]


# -------------------------------------------------------------------------------- ops


async def run_ops(e: Engine, ops: dict[str, Any]) -> None:
    rng = random.Random(ops["seed"])
    plan = ["launch"] * ops["launches"] + ["rerun"] * ops["reruns"] + ["cancel"] * ops["cancels"]
    rng.shuffle(plan)
    # Launch a few first so there is something to re-run and cancel.
    plan.sort(key=lambda op: 0 if op == "launch" and rng.random() < 0.3 else 1)
    out = open(ops["out"], "a")  # noqa: SIM115
    while not os.path.exists(ops["go"]):
        await anyio.sleep(0.02)
    for op in plan:
        row: dict[str, Any] = {"op": op, "engine": e.engine_id}
        try:
            if op == "launch":
                params = {
                    "lines": rng.randint(1, 25),
                    "interval": rng.choice([0, 0, 0.01, 0.02]),
                    "sleep": rng.choice([0, 0.2, 0.5, 1.0]),
                    "fail": rng.random() < 0.15,
                }
                job = await e.launch(ops.get("processing", "rel-probe"), "m/v1", params)
                row.update(ok=True, job=job.id, run=job.runs[0].id, params=params)
            else:
                jobs = [j.id for j in await e.jobs(limit=1000)]
                if not jobs:
                    row.update(skipped=True)
                else:
                    jid = rng.choice(jobs)
                    row["job"] = jid
                    if op == "rerun":
                        run = await e.rerun(jid)
                        row.update(ok=True, run=run.id)
                    else:
                        run = await e.cancel(jid)
                        row.update(ok=True, run=run.id)
        except RerunRefused as exc:
            row.update(ok=False, refused="RerunRefused", msg=str(exc))
        except EngineError as exc:
            row.update(ok=False, refused=type(exc).__name__, msg=str(exc))
        except Exception as exc:
            row.update(ok=False, crash=type(exc).__name__, msg=str(exc), tb=traceback.format_exc())
        out.write(json.dumps(row) + "\n")
        out.flush()
        await anyio.sleep(rng.uniform(0, 0.08))
    out.write(json.dumps({"op": "finished", "engine": e.engine_id}) + "\n")
    out.close()


async def main() -> None:
    install_hooks()
    settings = Settings(**CFG["settings"])
    async with Engine(settings, supervise=True, engine_id=CFG.get("engine_id")) as e:
        if CFG.get("started"):
            Path(CFG["started"]).write_text(e.engine_id)
        for spec in CFG.get("launches", []):
            await e.launch(spec["processing"], spec["version"], spec.get("params") or {})
        if CFG.get("ops"):
            await run_ops(e, CFG["ops"])
        stop = CFG.get("stop")
        while not (stop and os.path.exists(stop)):
            await anyio.sleep(0.1)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    anyio.run(main)
