"""Shared pieces of the reliability suite: the tally behind the closing table,
workspaces with the rel-probe processing, and the checks every test reuses
(database integrity, run history, one-line refusals, expected logs)."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from picsellia_tui.engine.config import Settings
from picsellia_tui.engine.logtext import MASK
from tests.core.helpers import stored_by_stream as stored_by_stream  # re-exported

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
PROBE_DIR = FIXTURES / "reliability_probe"
PROBE_IMAGE = "picsellia-tui/rel-probe:1.0.0"
WORKER = Path(__file__).resolve().parent / "engine_worker.py"
SECRET = "s3cr3t-Tok3n-Xq9"  # what the tests pass as the secret `token`

AREAS = ("crashes", "concurrency", "hostile input", "security")
# The classes of attack of issue 16, each counted in a second table (a bad input
# of one of them is counted in its area's row too).
CLASSES = (
    "paths not ours",
    "socket spoofing by another uid",
    "symlinked logs",
    "secrets visible to another user",
    "special or changing files",
    "unreachable hosts",
    "confinement",
    "hostile result.json",
)


# --------------------------------------------------------------------------- tally


@dataclass
class Row:
    faults: int = 0  # faults injected (SIGKILL, daemon restart, ssh drop, full disk...)
    runs_hit: int = 0  # runs in flight when a fault struck
    survived: int = 0  # of those, runs that ended truthfully with their log intact
    lines_lost: int = 0  # log lines missing or doubled against the container's output
    bad_tried: int = 0  # hostile inputs tried
    bad_clean: int = 0  # ... refused with one clear line, or neutralized
    notes: list[str] = field(default_factory=list)


class Tally:
    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.classes: dict[str, list[int]] = {}  # class -> [tried, clean]

    def row(self, area: str) -> Row:
        assert area in AREAS, area
        return self.rows.setdefault(area, Row())

    def fault(self, area: str, n: int = 1) -> None:
        self.row(area).faults += n

    def hit(self, area: str, n: int = 1) -> None:
        self.row(area).runs_hit += n

    def survived(self, area: str, n: int = 1) -> None:
        self.row(area).survived += n

    def lost(self, area: str, n: int) -> None:
        self.row(area).lines_lost += n

    def bad(
        self, area: str, clean: bool, note: str | None = None, klass: str | None = None
    ) -> None:
        if klass is not None:
            assert klass in CLASSES, klass
            c = self.classes.setdefault(klass, [0, 0])
            c[0] += 1
            c[1] += int(clean)
        r = self.row(area)
        r.bad_tried += 1
        if clean:
            r.bad_clean += 1
        elif note and len(r.notes) < 20:
            r.notes.append(note)

    def note(self, area: str, text: str) -> None:
        r = self.row(area)
        if len(r.notes) < 20:
            r.notes.append(text)

    def table(self) -> list[str]:
        head = (
            "area",
            "faults injected",
            "runs hit",
            "runs survived",
            "log lines lost",
            "bad inputs tried",
            "refused cleanly",
        )
        body: list[tuple[str, ...]] = []
        total = Row()
        for area in AREAS:
            if area not in self.rows:
                continue
            r = self.rows[area]
            body.append(
                (
                    area,
                    *map(
                        str,
                        (r.faults, r.runs_hit, r.survived, r.lines_lost, r.bad_tried, r.bad_clean),
                    ),
                )
            )
            for k in ("faults", "runs_hit", "survived", "lines_lost", "bad_tried", "bad_clean"):
                setattr(total, k, getattr(total, k) + getattr(r, k))
        body.append(
            (
                "total",
                *map(
                    str,
                    (
                        total.faults,
                        total.runs_hit,
                        total.survived,
                        total.lines_lost,
                        total.bad_tried,
                        total.bad_clean,
                    ),
                ),
            )
        )
        widths = [max(len(r[i]) for r in (head, *body)) for i in range(len(head))]

        def fmt(r: tuple[str, ...]) -> str:
            return " | ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )

        rule = "-+-".join("-" * w for w in widths)
        out = [fmt(head), rule, *map(fmt, body[:-1]), rule, fmt(body[-1])]
        lost_runs = total.runs_hit - total.survived
        unclean = total.bad_tried - total.bad_clean
        verdict = (
            "every run survived, no log line lost, every bad input refused cleanly"
            if not lost_runs and not total.lines_lost and not unclean
            else f"NOT CLEAN: {lost_runs} run(s) not survived, {total.lines_lost} line(s) lost, "
            f"{unclean} bad input(s) not refused cleanly"
        )
        out.append(verdict)
        for area in AREAS:
            for n in self.rows.get(area, Row()).notes:
                out.append(f"  {area}: {n}")
        if self.classes:
            out += ["", *self.class_table()]
        return out

    def class_table(self) -> list[str]:
        head = ("class of attack (issue 16)", "tried", "refused or contained")
        body = [(k, str(self.classes[k][0]), str(self.classes[k][1])) for k in CLASSES
                if k in self.classes]  # fmt: skip
        missing = [k for k in CLASSES if k not in self.classes]
        widths = [max(len(r[i]) for r in (head, *body)) for i in range(3)]

        def fmt(r: tuple[str, ...]) -> str:
            return " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                              enumerate(zip(r, widths, strict=True)))  # fmt: skip

        out = [fmt(head), "-+-".join("-" * w for w in widths), *map(fmt, body)]
        if missing:
            out.append(f"not tried in this session: {', '.join(missing)}")
        return out

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {area: asdict(r) for area, r in self.rows.items()}
        out["classes"] = {k: {"tried": t, "clean": c} for k, (t, c) in self.classes.items()}
        return out


# ------------------------------------------------------------------- clean messages

_CONTROL_RX = re.compile("[\x00-\x1f\x7f-\x9f]")


def message_problem(msg: str, limit: int = 400) -> str | None:
    """Why `msg` is not one clear line for a user (None when it is)."""
    if not msg.strip():
        return "empty message"
    if "\n" in msg or "\r" in msg:
        return "more than one line"
    if _CONTROL_RX.search(msg):
        return "raw control characters"
    if len(msg) > limit:
        return f"{len(msg)} characters long"
    if "Traceback" in msg or "sqlalchemy" in msg.lower() or "database is locked" in msg:
        return "internal details"
    return None


def expect_refusal(
    tally: Tally,
    area: str,
    fn: Callable[[], Any],
    allowed: type[BaseException] | tuple[type[BaseException], ...],
    what: str = "",
    klass: str | None = None,
) -> BaseException:
    """`fn()` must raise one of `allowed` with one clear line; counted in the tally."""
    try:
        fn()
    except allowed as exc:
        problem = message_problem(str(exc))
        tally.bad(area, problem is None, f"{what}: {problem}: {str(exc)[:120]!r}", klass)
        assert problem is None, f"{what}: {problem}: {str(exc)[:300]!r}"
        return exc
    except Exception as exc:
        tally.bad(area, False, f"{what}: crashed with {type(exc).__name__}: {exc}", klass)
        raise
    what = what[:200]
    tally.bad(area, False, f"{what}: accepted", klass)
    raise AssertionError(f"{what}: accepted")


async def expect_refusal_async(
    tally: Tally,
    area: str,
    fn: Callable[[], Awaitable[Any]],
    allowed: type[BaseException] | tuple[type[BaseException], ...],
    what: str = "",
    klass: str | None = None,
) -> BaseException:
    try:
        await fn()
    except allowed as exc:
        problem = message_problem(str(exc))
        tally.bad(area, problem is None, f"{what}: {problem}: {str(exc)[:120]!r}", klass)
        assert problem is None, f"{what}: {problem}: {str(exc)[:300]!r}"
        return exc
    except Exception as exc:
        tally.bad(area, False, f"{what}: crashed with {type(exc).__name__}: {exc}", klass)
        raise
    what = what[:200]
    tally.bad(area, False, f"{what}: accepted", klass)
    raise AssertionError(f"{what}: accepted")


# ----------------------------------------------------------------------- workspaces


def make_settings(tmp: Path, **kw: Any) -> Settings:
    procs = tmp / "processings"
    if not procs.exists():
        procs.mkdir(parents=True)
        shutil.copytree(PROBE_DIR, procs / "rel-probe")
    values: dict[str, Any] = dict(
        data_dir=tmp / "data",
        executor="process",
        processings_dir=procs,
        cancel_grace_seconds=2.0,
        heartbeat_seconds=0.5,
        lease_timeout_seconds=3.0,
        reconcile_seconds=1.0,
        concurrency=4,
        export_dir=tmp / "exports",
        organization="acme",
        user="tester",
    )
    values.update(kw)
    return Settings(**values)


def settings_json(s: Settings) -> dict[str, Any]:
    """What an engine subprocess needs to build the same Settings."""
    return json.loads(s.model_dump_json())


def config_file(s: Settings, path: Path) -> Path:
    """The same settings as a config file, for the command line (`--config`)."""
    import tomli_w

    data = {k: v for k, v in settings_json(s).items() if v is not None}
    data["hosts"] = [{k: v for k, v in h.items() if v is not None} for h in data["hosts"]]
    path.write_text(tomli_w.dumps(data))
    return path


def cli_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("PICSELLIA_TUI_")}


def model_file(tmp: Path, content: bytes = b"fake onnx bytes") -> Path:
    p = tmp / "src" / "model.onnx"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content)
    return p


def worker_cmd(config: dict[str, Any], path: Path) -> list[str]:
    path.write_text(json.dumps(config))
    return [sys.executable, str(WORKER), str(path)]


# --------------------------------------------------------------------------- checks


def integrity(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        con.close()


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db, timeout=30)
    try:
        return list(con.execute(sql, args).fetchall())
    finally:
        con.close()


FINAL = {"succeeded", "failed", "killed"}


def history_problems(db: Path) -> list[str]:
    """Run history as the database tells it, checked against the rules:

    - each run's events are `pending`, then optionally `running`, then one final
      status equal to the run's status (nothing lost, nothing doubled);
    - replayed in commit order (event ids), a job never has two active runs;
    - the job's denormalised status and attempts match its latest run.
    """
    problems: list[str] = []
    runs = {
        rid: (job, attempt, status)
        for rid, job, attempt, status in query(db, "select id, job_id, attempt, status from run")
    }
    events: dict[int, list[str]] = {rid: [] for rid in runs}
    active: dict[int, set[int]] = {}
    for _eid, rid, status in query(db, "select id, run_id, status from run_event order by id"):
        events.setdefault(rid, []).append(status)
        job = runs[rid][0]
        act = active.setdefault(job, set())
        if status == "pending":
            if act:
                problems.append(f"job {job}: run {rid} queued while run(s) {sorted(act)} active")
            act.add(rid)
        elif status in FINAL:
            act.discard(rid)
    for rid, (job, attempt, status) in runs.items():
        seq = events.get(rid, [])
        ok = (
            len(seq) in (2, 3)
            and seq[0] == "pending"
            and seq[-1] in FINAL
            and (len(seq) == 2 or seq[1] == "running")
        )
        if status in ("pending", "running"):
            ok = seq in (["pending"], ["pending", "running"])
        if not ok:
            problems.append(f"run {rid} (job {job} #{attempt}) history {seq}")
        elif seq[-1] != status:
            problems.append(f"run {rid}: status {status} but last event {seq[-1]}")
    for jid, last_status, attempts in query(db, "select id, last_status, attempts from job"):
        mine = sorted((a, s) for j, a, s in runs.values() if j == jid)
        if not mine:
            problems.append(f"job {jid} has no run")
            continue
        if mine[-1][0] != attempts or [a for a, _ in mine] != list(range(1, attempts + 1)):
            problems.append(f"job {jid}: attempts {attempts} but runs {[a for a, _ in mine]}")
        if mine[-1][1] != last_status:
            problems.append(f"job {jid}: last_status {last_status} but latest run {mine[-1][1]}")
    return problems


def versions_of_job(db: Path, job_id: int) -> int:
    return int(query(db, "select count(*) from model_version where origin_job_id=?", job_id)[0][0])


def masked(text: str, secret: str | None = SECRET) -> str:
    return text.replace(secret, MASK) if secret else text


def expected_stdout(
    job: int, run: int, attempt: int, lines: int, *, token: str | None = None, done: bool = True
) -> list[str]:
    """What rel-probe prints on stdout in `plain` mode (secrets masked)."""
    out = [f"starting job {job} run {run} attempt {attempt}"]
    if token:
        out += [f"using token {MASK}", f"split [{MASK}] end"]
    out += [f"line {i}" for i in range(lines)]
    if done:
        out.append("done")
    return out


def expected_stderr_head(lines: int, *, token: str | None = None) -> list[str]:
    out = [f"token in stderr: {MASK}"] if token else []
    out += [f"err {i}" for i in range(lines) if i % 10 == 9]
    out.append("to stderr")
    return out


def lines_lost(stored: list[str], expected: list[str]) -> int:
    """Lines missing from or doubled in `stored` against `expected` (multiset)."""
    from collections import Counter

    a, b = Counter(stored), Counter(expected)
    return sum(((b - a) + (a - b)).values())


def docker_log_lines(container: Any, stream: str | None = None) -> list[str]:
    """`docker logs` of a container (one stream, or both merged in the order of
    Docker's log file), split into lines the way the engine splits them."""
    raw = container.logs(stdout=stream in (None, "stdout"), stderr=stream in (None, "stderr"))
    lines = raw.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.removesuffix("\r") for ln in lines]


def docker_by_stream(container: Any) -> dict[str, list[str]]:
    """`docker logs` per stream. The engine follows a live run through attach: the
    order of its stdout and stderr lines between them is the order they reached
    it, which may differ from the order of Docker's log file where two lines of
    different streams were written at the same moment. Within a stream the order
    is the same: compare logs stream by stream."""
    return {s: docker_log_lines(container, s) for s in ("stdout", "stderr")}


def run_cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    exe = Path(sys.executable).with_name("picsellia-tui")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=timeout, env=env
    )
