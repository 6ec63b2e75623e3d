"""The selected job's detail in the Jobs tab: a one-line summary, its run history
(each run's image digest, marked where it changed) and the error summary of a
failed run. It loads the job itself, where the list's cursor rests, and says which
run to show (`RunShown`) and what it learnt of the job (`Loaded`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Static

from picsellia_tui.engine.errors import EngineError
from picsellia_tui.tui.widgets.base import EngineAccess, Table, tick_while
from picsellia_tui.tui.widgets.format import status_text

if TYPE_CHECKING:
    from picsellia_tui.engine.views import JobView, RunView

DETAIL_DELAY = 0.08  # held arrow keys fly over rows: load where the cursor rests
TICK_DELAY = 0.2  # events within this window cost one query
RUN_COLUMNS = ("attempt", "status", "by", "started", "duration", "exit", "image", "where")
RUN_WIDTHS = {"attempt": 7, "status": 11, "duration": 8, "exit": 4, "image": 16}
# The image column's marks, said where they show.
RUN_LABELS = {"image": "image ●new =pin"}
EMPTY = "No jobs yet. Launch one: a processing (tab 1) or a model version (tab 2), then enter."


class RunsTable(Table):
    BINDINGS = [Binding("enter", "select_cursor", "Log", show=False)]


class JobDetail(EngineAccess, Vertical):
    class Loaded(Message):
        """The freshest view of a job, with its runs."""

        def __init__(self, job: JobView) -> None:
            super().__init__()
            self.job = job

    class RunShown(Message):
        """This run of the job is the one whose log is wanted."""

        def __init__(self, job: JobView, run: RunView) -> None:
            super().__init__()
            self.job = job
            self.run = run

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.current: JobView | None = None  # the job shown, with its runs
        self.current_run_id: int | None = None
        self.pin_latest = True  # show the newest run of the job as runs are added
        self._wanted: int | None = None  # the job asked for last: others' answers are late
        self._stale = False
        self._delay_timer: Timer | None = None
        self._tick_timer: Timer | None = None  # the one-shot refresh, when pending
        self._duration_timer: Timer | None = None  # while a running run is on screen

    def compose(self) -> ComposeResult:
        yield Static("", id="job-summary")
        runs = RunsTable(id="runs-table")
        for col in RUN_COLUMNS:
            runs.add_column(RUN_LABELS.get(col, col), key=col, width=RUN_WIDTHS.get(col))
        yield runs
        with VerticalScroll(id="run-error", classes="-hidden"):
            yield Static("", id="run-error-text")

    # -- what the pane tells it ------------------------------------------------------------

    def show_job(self, job_id: int, *, at_once: bool = False) -> None:
        """Show this job: at once (a selection made for the user), or once the cursor
        rests on it (a highlight)."""
        self._wanted = job_id
        if at_once:
            self.load(job_id)
            return
        if self.current is None or self.current.id != job_id:
            self.pin_latest = True
            if self._delay_timer is not None:
                self._delay_timer.stop()
            self._delay_timer = self.set_timer(DETAIL_DELAY, lambda: self.load(job_id))

    def mark_stale(self, job_id: int | None = None) -> None:
        """The shown job (or any job, when None) may have changed: reload it shortly."""
        if self.current is not None and job_id in (None, self.current.id):
            self._stale = True
            self._kick()

    def show_empty(self) -> None:
        self.query_one("#job-summary", Static).update(Text(EMPTY, style="dim"))

    # -- loading -----------------------------------------------------------------------------

    def _kick(self) -> None:
        if self._tick_timer is None and self.is_mounted:
            self._tick_timer = self.set_timer(TICK_DELAY, self._tick)

    def _tick(self) -> None:
        self._tick_timer = None
        if self._stale and self.current is not None:
            self._stale = False
            self.load(self.current.id)

    @work(exit_on_error=False, exclusive=True, group="job-detail")
    async def load(self, job_id: int) -> None:
        try:
            job = await self.engine_await(lambda e: e.job(job_id))
        except EngineError:
            return
        finally:
            if self._stale:  # marked while this load ran
                self._kick()
        if job.id != self._wanted:
            return  # the cursor moved on meanwhile
        self.post_message(self.Loaded(job))
        self._show(job)

    def _show(self, job: JobView) -> None:
        same_job = self.current is not None and self.current.id == job.id
        self.current = job
        self._update_duration_timer()
        self._show_summary(job)
        runs = self.query_one(RunsTable)
        if not same_job:
            runs.clear()
        for run in job.runs:
            key = str(run.id)
            cells = self._run_cells(run)
            if runs.has_key(key):
                for col, value in zip(RUN_COLUMNS, cells, strict=True):
                    runs.update_cell(key, col, value, update_width=True)
            else:
                runs.add_row(*cells, key=key)
        if not job.runs:
            return
        chosen = (
            job.runs[-1]
            if (self.pin_latest or not same_job)
            else next((r for r in job.runs if r.id == self.current_run_id), job.runs[-1])
        )
        runs.select_key(str(chosen.id))
        self._show_run(job, chosen)

    @on(DataTable.RowHighlighted, "#runs-table")
    def _run_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.current is None or event.row_key is None or event.row_key.value is None:
            return
        run_id = int(event.row_key.value)
        if run_id == self.current_run_id:
            return
        run = next((r for r in self.current.runs if r.id == run_id), None)
        if run is not None:
            self.pin_latest = run.id == self.current.runs[-1].id
            self._show_run(self.current, run)

    def _show_run(self, job: JobView, run: RunView) -> None:
        self.current_run_id = run.id
        box = self.query_one("#run-error", VerticalScroll)
        if run.status in ("failed", "killed") and run.error_summary:
            head, body = error_panel(run)
            self.query_one("#run-error-text", Static).update(body)
            box.set_class(not body.plain.strip(), "-empty")
            box.remove_class("-hidden")
            box.border_title = f"run #{run.attempt} {run.status}: {head}"
            # The end of a stack trace says what went wrong: show it first.
            box.call_after_refresh(box.scroll_end, animate=False)
        elif run.status == "pending" and run.error_summary:
            # Why it waits (a cluster with no node for it yet).
            self.query_one("#run-error-text", Static).update(Text(run.error_summary))
            box.remove_class("-empty", "-hidden")
            box.border_title = f"run #{run.attempt} pending"
        else:
            box.add_class("-hidden")
        self.post_message(self.RunShown(job, run))

    def _show_summary(self, job: JobView) -> None:
        params = ", ".join(f"{k}={v}" for k, v in job.parameters.items()) or "no parameters"
        self.query_one("#job-summary", Static).update(
            Text.assemble(
                (f"job {job.id} ", "bold"),
                status_text(job.status),
                ("  ", ""),
                (job.processing, "bold"),
                (" on ", "dim"),
                (job.target, ""),
                (" → ", "dim"),
                (job.output_label, ""),
                ("  ", ""),
                (params, "dim"),
            )
        )

    def _run_cells(self, run: RunView) -> tuple[Any, ...]:
        return (
            Text(f"#{run.attempt}", justify="right"),
            status_text(run.status),
            run.launched_by,
            self.clock.when(run.started_at),
            self.clock.duration(run.started_at, run.ended_at),
            Text("-" if run.exit_code is None else str(run.exit_code), justify="right"),
            image_cell(run),
            # The host, and the node a cluster (swarm) placed the run on.
            f"{run.host} · {run.node}" if run.node else run.host,
        )

    # -- durations ---------------------------------------------------------------------------

    def _running_runs(self) -> list[RunView]:
        return [r for r in self.current.runs if r.status == "running"] if self.current else []

    def _update_duration_timer(self) -> None:
        """Tick durations each second while a running run is on screen, only then."""
        if self.is_mounted:
            running = bool(self._running_runs())
            self._duration_timer = tick_while(
                self, self._duration_timer, running, self._tick_durations
            )

    def _tick_durations(self) -> None:
        running = self._running_runs()
        runs_table = self.query_one(RunsTable)
        for run in running:
            if runs_table.has_key(str(run.id)):
                runs_table.update_cell(
                    str(run.id), "duration", self.clock.duration(run.started_at, None)
                )
        if not running:
            self._update_duration_timer()


def image_cell(run: RunView) -> Text:
    """The run's short digest; marked where it changed since the run before, and
    where the run pinned an earlier run's image."""
    if not run.short_digest:
        return Text("-")
    if run.image_changed:
        return Text.assemble(("● ", "bold yellow"), (run.short_digest, "bold"))
    pinned = (run.image_ref or "").rpartition("@")[2].startswith("sha256:")
    return Text.assemble(("= " if pinned else "  ", "dim"), (run.short_digest, ""))


def error_panel(run: RunView) -> tuple[str, Text]:
    """(the reason, the rest: the tail of the log, a stack trace most often)."""
    lines = (run.error_summary or "").splitlines()
    head, rest = (lines[0], lines[1:]) if lines else ("", [])
    text = Text()
    for i, line in enumerate(rest[-60:]):
        last = i == len(rest[-60:]) - 1
        style = "bold red" if last else ("bold" if line and not line.startswith(" ") else "")
        text.append(line + ("" if last else "\n"), style=style)
    return head, text
