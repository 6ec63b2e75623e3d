"""The Jobs tab: jobs newest first, updated in place by key as engine events
arrive; the selected job's run history, its failed run's error summary and the
log of the selected run.

Big histories are paged: the first PAGE jobs load at once, the next page when
the cursor nears the end. Engine events only mark what is stale and schedule one
short one-shot timer, which fetches the changed jobs (`jobs(changed_since=...)`)
in a worker, so a burst of events costs one query. Nothing polls: with nothing
happening no timer runs, except the 1 s tick of the duration of a running run
while one is on screen.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, Static, TabbedContent
from textual.worker import Worker, WorkerState, get_current_worker

from picsellia_tui.engine.errors import EngineError, RerunRefused
from picsellia_tui.storage.params import MASK
from picsellia_tui.tui.messages import LaunchRequested
from picsellia_tui.tui.widgets.base import EngineAccess, Table
from picsellia_tui.tui.widgets.format import status_text
from picsellia_tui.tui.widgets.log_view import LogView

if TYPE_CHECKING:
    from picsellia_tui.engine.events import Event
    from picsellia_tui.engine.views import JobView, RunView

PAGE = 200
RUNS_BATCH = 40
DETAIL_DELAY = 0.08
TICK_DELAY = 0.2  # events within this window cost one query
ACTIVE = ("pending", "running")
JOB_COLUMNS = ("job", "status", "attempts", "processing", "target", "by", "when", "duration")
RUN_COLUMNS = ("attempt", "status", "by", "started", "duration", "exit", "image")
# Fixed widths: cells updated in place never re-measure a whole column (O(rows)).
WIDTHS = {
    "job": 6,
    "status": 11,
    "attempts": 8,
    "attempt": 7,
    "duration": 8,
    "exit": 4,
    "image": 16,
}
# The image column's marks, said where they show.
RUN_LABELS = {"image": "image ●new =pin"}
OVERLAP = timedelta(seconds=2)  # re-read a little before the last change seen


class JobsTable(Table):
    BINDINGS = [Binding("enter", "select_cursor", "Log", show=False)]

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # Rows came into view: their durations (and maybe the next page) are wanted.
        if int(old_value) != int(new_value):
            for pane in self.ancestors:
                if isinstance(pane, JobsPane):
                    pane.kick()
                    break


class RunsTable(Table):
    BINDINGS = [Binding("enter", "select_cursor", "Log", show=False)]


class JobsPane(EngineAccess, Vertical):
    BINDINGS = [
        Binding("r", "rerun", "Re-run"),
        Binding("R", "edit_rerun", "Edit+re-run"),
        Binding("c", "cancel", "Cancel run"),
        Binding("z", "zoom_log", "Zoom log"),
        # Log keys work from anywhere in the tab; the log pane's own win when it has focus.
        Binding("f", "log('toggle_follow')", "Follow", show=False),
        Binding("w", "log('toggle_wrap')", "Wrap", show=False),
        Binding("t", "log('toggle_timestamps')", "Timestamps", show=False),
        Binding("slash", "log('search')", "Search log", show=False),
        Binding("n", "log('next_match')", "Next match", show=False),
        Binding("N", "log('previous_match')", "Previous match", show=False),
        Binding("s", "log('save')", "Save log", show=False),
        Binding("G", "log('bottom')", "Log bottom", show=False),
        Binding("ctrl+r", "reload", "Reload", show=False),
    ]

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.jobs: dict[int, JobView] = {}
        self.latest_runs: dict[int, RunView] = {}  # job id -> its latest run, when known
        self._stale_runs: set[int] = set()  # jobs whose latest run changed since fetched
        self._runs_fetching = False
        self.total = 0
        self.last_seen: datetime | None = None
        self.oldest_page_id: int | None = None
        self.exhausted = False
        self.loaded = False
        self.current: JobView | None = None  # the selected job, with its runs
        self.current_run_id: int | None = None
        self.pin_latest = True  # show the newest run of the job as runs are added
        self._want_job: int | None = None
        self._job_chosen = False  # focus_job was called: the first page keeps its pick
        self._want_follow: bool | None = None
        self._need_changes = False
        self._need_detail = False
        self._fetching = False
        self._paging = False
        self._log_path: str | None = None
        self._detail_timer: Timer | None = None
        self._tick_timer: Timer | None = None  # the one-shot refresh, when pending
        self._duration_timer: Timer | None = None  # while a running run is on screen

    def compose(self) -> ComposeResult:
        jobs = JobsTable(id="jobs-table")
        for col in JOB_COLUMNS:
            jobs.add_column(col, key=col, width=WIDTHS.get(col))
        yield jobs
        with Vertical(id="job-detail"):
            yield Static("", id="job-summary")
            runs = RunsTable(id="runs-table")
            for col in RUN_COLUMNS:
                runs.add_column(RUN_LABELS.get(col, col), key=col, width=WIDTHS.get(col))
            yield runs
            with VerticalScroll(id="run-error", classes="-hidden"):
                yield Static("", id="run-error-text")
            # Polls its file only while the shown run is active (see _show_run); its
            # save folder is set with its first run (settings may still be loading).
            yield LogView(id="job-log", live=False)

    def on_mount(self) -> None:
        self.load_page()
        mounted = getattr(self.screen, "view_mounted", None)
        if mounted is not None:  # mounted lazily: the tab may be shown already
            mounted("jobs")

    def on_resize(self) -> None:
        self.kick()

    # -- engine events -------------------------------------------------------------------

    def engine_event(self, ev: Event) -> None:
        from picsellia_tui.engine.events import (
            ExternalChange,
            JobCreated,
            LogAppended,
            Resync,
            RunChanged,
        )

        if isinstance(ev, LogAppended):
            if ev.run_id == self.current_run_id:
                self.query_one(LogView).refresh_source()
            return
        if isinstance(ev, JobCreated | ExternalChange | Resync):
            self._need_changes = True
            if self.current is not None and not isinstance(ev, JobCreated):
                self._need_detail = True
            self.kick()
        elif isinstance(ev, RunChanged):
            self._need_changes = True
            if self.current is not None and ev.job_id == self.current.id:
                self._need_detail = True
            self.kick()

    def kick(self, delay: float = TICK_DELAY) -> None:
        """Something may be stale: refresh once, shortly (one timer for a burst)."""
        if self._tick_timer is None and self.is_mounted:
            self._tick_timer = self.set_timer(max(delay, 0.01), self._tick)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # (EngineAccess's handler runs too: Textual calls each class's own.)
        # A fetch ended: what was marked stale while it ran is fetched now.
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            if self._need_changes or self._need_detail or self._stale_runs:
                self.kick()

    def _tick(self) -> None:
        self._tick_timer = None
        self._tick_runs()
        if self._need_changes and not self._fetching and self.loaded:
            self._need_changes = False
            self._fetching = True
            self.fetch_changes(self.last_seen - OVERLAP if self.last_seen else None)
        if self._need_detail and self.current is not None:
            self._need_detail = False
            self.load_detail(self.current.id)

    def _running_on_screen(self) -> tuple[list[tuple[int, RunView]], list[RunView]]:
        """Running runs whose duration is on screen: (job id, its latest run) of
        the visible job rows, and the runs of the selected job."""
        jobs = []
        for job_id in self._visible_ids():
            run = self.latest_runs.get(job_id)
            if run is not None and run.status == "running":
                jobs.append((job_id, run))
        runs = [r for r in self.current.runs if r.status == "running"] if self.current else []
        return jobs, runs

    def _update_duration_timer(self) -> None:
        """Tick durations each second while a running run is on screen, only then."""
        if not self.is_mounted:
            return
        jobs, runs = self._running_on_screen()
        if jobs or runs:
            if self._duration_timer is None:
                self._duration_timer = self.set_interval(1.0, self._tick_durations)
        elif self._duration_timer is not None:
            self._duration_timer.stop()
            self._duration_timer = None

    def _tick_durations(self) -> None:
        jobs, runs = self._running_on_screen()
        table = self.query_one(JobsTable)
        for job_id, run in jobs:
            table.update_cell(str(job_id), "duration", self.clock.duration(run.started_at, None))
        runs_table = self.query_one(RunsTable)
        for run in runs:
            if runs_table.has_key(str(run.id)):
                runs_table.update_cell(
                    str(run.id), "duration", self.clock.duration(run.started_at, None)
                )
        if not (jobs or runs):
            self._update_duration_timer()

    # -- loading -------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="jobs-page")
    def load_page(self, before_id: int | None = None) -> None:
        async def go(e: Any) -> tuple[list[JobView], int]:
            return await e.jobs(limit=PAGE, before_id=before_id), await e.count_jobs()

        rows, total = self.engine_call(go)
        self.app.call_from_thread(self._page_loaded, rows, total)

    def _show_total(self, total: int) -> None:
        if total != self.total or not self.loaded:
            self.total = total
            for tabs in self.screen.query(TabbedContent):
                tabs.get_tab("jobs").label = f"3 Jobs ({total:,})"

    def _page_loaded(self, rows: list[JobView], total: int) -> None:
        self._paging = False
        self._show_total(total)
        if len(rows) < PAGE:
            self.exhausted = True
        if rows:
            low = min(j.id for j in rows)
            self.oldest_page_id = (
                low if self.oldest_page_id is None else min(low, self.oldest_page_id)
            )
        self._apply(rows)
        if not self.loaded:
            self.loaded = True
            if self._want_job is None and not self._job_chosen and rows:
                self._select_job(rows[0].id)
        self.kick(0)  # the durations of the rows on screen; the next page when near

    @work(thread=True, exit_on_error=False, group="jobs-changes")
    def fetch_changes(self, since: datetime | None) -> None:
        async def go(e: Any) -> tuple[list[JobView], int]:
            out: list[JobView] = []
            offset = 0
            while True:
                rows = await e.jobs(limit=500, offset=offset, changed_since=since)
                out += rows
                if len(rows) < 500 or since is None:
                    break
                offset += 500
            return out, await e.count_jobs()

        try:
            rows, total = self.engine_call(go)
        finally:
            self._fetching = False
        self.app.call_from_thread(self._changes_loaded, rows, total)

    def _changes_loaded(self, rows: list[JobView], total: int) -> None:
        self._show_total(total)
        floor = self.oldest_page_id
        # Jobs older than the loaded pages come with their page, not now.
        self._apply([j for j in rows if j.id in self.jobs or floor is None or j.id > floor])
        self.kick()

    # Durations need each job's latest run, which the job list does not carry: they
    # are fetched for the rows on screen only, a few at a time, when missing or stale.

    def _visible_ids(self) -> list[int]:
        table = self.query_one(JobsTable)
        top = int(table.scroll_y)
        rows = table.ordered_rows[top : top + table.size.height + 2]
        return [int(r.key.value) for r in rows if r.key.value is not None]

    def _tick_runs(self) -> None:
        if self._runs_fetching or not self.loaded:
            return
        want = [
            i for i in self._visible_ids() if i in self._stale_runs or i not in self.latest_runs
        ][:RUNS_BATCH]
        if want:
            self._runs_fetching = True
            self._stale_runs.difference_update(want)
            self._fetch_runs(want)
        table = self.query_one(JobsTable)
        bottom = int(table.scroll_y) + table.size.height
        if not self.exhausted and not self._paging and bottom >= table.row_count - 20:
            self._paging = True
            self.load_page(self.oldest_page_id)

    @work(thread=True, exit_on_error=False, group="jobs-runs")
    def _fetch_runs(self, ids: list[int]) -> None:
        try:
            runs = self.engine_call(lambda e: e.latest_runs(ids))
        finally:
            self._runs_fetching = False
        self.app.call_from_thread(self._runs_loaded, runs)

    def _runs_loaded(self, runs: dict[int, RunView]) -> None:
        table = self.query_one(JobsTable)
        for job_id, run in runs.items():
            self.latest_runs[job_id] = run
            if table.has_key(str(job_id)):
                table.update_cell(str(job_id), "duration", self._duration(job_id))
        self._update_duration_timer()
        self.kick()  # more rows on screen may still lack their run

    def _duration(self, job_id: int) -> str:
        run = self.latest_runs.get(job_id)
        return self.clock.duration(run.started_at, run.ended_at) if run else "-"

    def _apply(self, rows: list[JobView]) -> None:
        """Update rows in place by key; new jobs are inserted in id order."""
        table = self.query_one(JobsTable)
        keep = table.cursor_key
        added = False
        for job in rows:
            key = str(job.id)
            cells = self._cells(job)
            if job.id in self.jobs:
                before_job = self.jobs[job.id]
                if (before_job.status, before_job.attempts, before_job.updated_at) != (
                    job.status,
                    job.attempts,
                    job.updated_at,
                ):
                    self._stale_runs.add(job.id)
                old = self._cells(self.jobs[job.id]) if self.jobs[job.id] != job else cells
                for col, value, before in zip(JOB_COLUMNS, cells, old, strict=True):
                    if value != before or col in ("status", "duration", "attempts"):
                        table.update_cell(key, col, value)
            else:
                table.add_row(*cells, key=key)
                added = True
            self.jobs[job.id] = job
            if self.last_seen is None or job.updated_at > self.last_seen:
                self.last_seen = job.updated_at
        if added:
            table.sort("job", key=lambda cell: -int(cell.plain), reverse=False)
            if keep is not None:
                table.select_key(keep, scroll=False)
        if self._want_job is not None and table.has_key(str(self._want_job)):
            self._select_job(self._want_job)
        self._update_empty()
        self._update_duration_timer()
        if self._stale_runs:
            self.kick()

    def _update_empty(self) -> None:
        if not self.jobs and self.loaded:
            self.query_one("#job-summary", Static).update(
                Text(
                    "No jobs yet. Launch one: a processing (tab 1) or a model version (tab 2), "
                    "then enter.",
                    style="dim",
                )
            )

    def _cells(self, job: JobView) -> tuple[Any, ...]:
        dur = self._duration(job.id)
        return (
            Text(str(job.id), justify="right"),
            status_text(job.status),
            Text(str(job.attempts), justify="right"),
            job.processing,
            job.target,
            job.launched_by,
            self.clock.when(job.created_at),
            dur,
        )

    # -- selection -----------------------------------------------------------------------

    def focus_job(self, job_id: int, follow: bool = True) -> None:
        """Select a job (loading it when it is not in the loaded pages) and show its
        latest run's log."""
        self._want_follow = follow
        self.pin_latest = True
        self._job_chosen = True
        if job_id in self.jobs:
            self._select_job(job_id)
        else:
            self._want_job = job_id
            self._fetch_one(job_id)
        self.query_one(JobsTable).focus()

    @work(thread=True, exit_on_error=False, group="jobs-one")
    def _fetch_one(self, job_id: int) -> None:
        try:
            job = self.engine_call(lambda e: e.job(job_id))
        except EngineError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
            return
        runs = {job.id: job.runs[-1]} if job.runs else {}
        self.app.call_from_thread(self._one_loaded, job, runs)

    def _one_loaded(self, job: JobView, runs: dict[int, RunView]) -> None:
        self.latest_runs.update(runs)
        self._apply([job.model_copy(update={"runs": []})])

    def _select_job(self, job_id: int) -> None:
        table = self.query_one(JobsTable)
        if table.select_key(str(job_id)):
            self._want_job = None
            self.load_detail(job_id)

    @on(DataTable.RowHighlighted, "#jobs-table")
    def _job_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is None or event.row_key.value is None:
            return
        job_id = int(event.row_key.value)
        if self.current is None or self.current.id != job_id:
            self.pin_latest = True
            # Held arrow keys fly over rows: load the detail where the cursor rests.
            if self._detail_timer is not None:
                self._detail_timer.stop()
            self._detail_timer = self.set_timer(DETAIL_DELAY, lambda: self.load_detail(job_id))

    @on(DataTable.RowSelected, "#jobs-table")
    def _job_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.query_one(LogView).focus()

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

    @on(DataTable.RowSelected, "#runs-table")
    def _run_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.query_one(LogView).focus()

    @work(thread=True, exit_on_error=False, exclusive=True, group="job-detail")
    def load_detail(self, job_id: int) -> None:
        try:
            job = self.engine_call(lambda e: e.job(job_id))
        except EngineError:
            return
        if get_current_worker().is_cancelled:
            return
        self.app.call_from_thread(self._detail_loaded, job)

    def _detail_loaded(self, job: JobView) -> None:
        table = self.query_one(JobsTable)
        if table.cursor_key != str(job.id):
            return  # the cursor moved on meanwhile
        if job.runs:
            self.latest_runs[job.id] = job.runs[-1]
        if job.id in self.jobs:
            self._apply([job.model_copy(update={"runs": []})])
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

    def _show_summary(self, job: JobView) -> None:
        params = ", ".join(f"{k}={v}" for k, v in job.parameters.items()) or "no parameters"
        out = job.output_label
        self.query_one("#job-summary", Static).update(
            Text.assemble(
                (f"job {job.id} ", "bold"),
                status_text(job.status),
                ("  ", ""),
                (job.processing, "bold"),
                (" on ", "dim"),
                (job.target, ""),
                (" → ", "dim"),
                (out, ""),
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
        )

    def _show_run(self, job: JobView, run: RunView) -> None:
        self.current_run_id = run.id
        log = self.query_one(LogView)
        # An active run's log grows: LogAppended events say so when this engine
        # captures it, polling the file covers another instance's. A finished
        # run's log is complete: no polling.
        log.live = run.status in ACTIVE
        log.save_dir = self.settings.export_dir
        if self._want_follow is not None:
            log.follow = self._want_follow
            self._want_follow = None
        if self._log_path != run.log_path:
            self._log_path = run.log_path
            from pathlib import Path

            log.set_source(Path(run.log_path), save_name=f"job-{job.id}-run-{run.attempt}")
        else:
            log.refresh_source()
        box = self.query_one("#run-error", VerticalScroll)
        if run.status in ("failed", "killed") and run.error_summary:
            head, body = error_panel(run)
            self.query_one("#run-error-text", Static).update(body)
            box.set_class(not body.plain.strip(), "-empty")
            box.remove_class("-hidden")
            box.border_title = f"run #{run.attempt} {run.status}: {head}"
            # The end of a stack trace says what went wrong: show it first.
            box.call_after_refresh(box.scroll_end, animate=False)
        else:
            box.add_class("-hidden")
        # The error panel changes the log's height: stay at the bottom when following.
        self.call_after_refresh(self._log_to_bottom)

    def on_show(self) -> None:
        # A log set while the tab was hidden was laid out at height 0.
        self.call_after_refresh(self._log_to_bottom)
        self.kick(0)  # the rows now on screen may lack their durations

    def _log_to_bottom(self) -> None:
        log = self.query_one(LogView)
        if log.follow:
            log.log_lines.scroll_to_bottom()

    def selected_job(self) -> JobView | None:
        key = self.query_one(JobsTable).cursor_key
        if key is None:
            return None
        job = self.jobs.get(int(key))
        if job is not None and self.current is not None and self.current.id == job.id:
            # The detail is the freshest view of the selected job.
            if self.current.updated_at >= job.updated_at:
                return self.current
        return job

    # -- actions -------------------------------------------------------------------------

    async def action_log(self, action: str) -> None:
        log = self.query_one(LogView)
        if action == "search":
            log.focus()
        await log.run_action(action)

    def action_zoom_log(self) -> None:
        if self.screen.maximized is not None:
            self.screen.minimize()
        else:
            log = self.query_one(LogView)
            log.focus()
            self.screen.maximize(log, container=False)

    def action_reload(self) -> None:
        self._need_changes = True
        if self.current is not None:
            self._need_detail = True
        self.kick(0)

    def action_rerun(self) -> None:
        job = self.selected_job()
        if job is None:
            self.app.notify("No job selected.", severity="warning")
            return
        if job.active:
            self.app.notify(
                f"Job {job.id} has a {job.status} run: re-run is refused until it ends "
                "(c cancels it).",
                title="Re-run refused",
                severity="warning",
            )
            return
        from picsellia_tui.tui.dialogs.rerun import RerunChoice, RerunDialog

        def done(choice: RerunChoice | None) -> None:
            if choice is not None:
                self._rerun(job.id, choice.same_image)

        # The runs are known once the job's detail has loaded (it is the selected one).
        runs = self.current.runs if self.current is not None and self.current.id == job.id else []
        last = next((r for r in reversed(runs) if r.short_digest), None)
        pin = f"run #{last.attempt}, {last.short_digest}" if last else None
        self.app.push_screen(
            RerunDialog(
                f"Re-run job {job.id}?",
                f"{job.processing} on {job.target}, same parameters: run #{job.attempts + 1}.",
                pin,
            ),
            done,
        )

    @work(thread=True, exit_on_error=False, group="jobs-action")
    def _rerun(self, job_id: int, same_image: bool = False) -> None:
        try:
            run = self.engine_call(lambda e: e.rerun(job_id, same_image=same_image))
        except RerunRefused as exc:
            self.app.call_from_thread(
                self.app.notify, str(exc), title="Re-run refused", severity="warning"
            )
            return
        except EngineError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self._rerun_done, run)

    def _rerun_done(self, run: RunView) -> None:
        self.app.notify(f"Job {run.job_id}: run #{run.attempt} queued.")
        if self.current is not None and self.current.id == run.job_id:
            self.pin_latest = True
            log = self.query_one(LogView)
            log.follow = True
            self._need_detail = True
        self._need_changes = True
        self.kick()

    def action_edit_rerun(self) -> None:
        job = self.selected_job()
        if job is None:
            self.app.notify("No job selected.", severity="warning")
            return
        params = {k: v for k, v in job.parameters.items() if v != MASK}
        self.post_message(
            LaunchRequested(
                processing=job.processing,
                version=job.target,
                params=params,
                title=f"Edit and re-run job {job.id} (a new job)",
            )
        )

    def action_cancel(self) -> None:
        job = self.selected_job()
        if job is None:
            self.app.notify("No job selected.", severity="warning")
            return
        if not job.active:
            self.app.notify(
                f"Job {job.id} has no pending or running run to cancel.", severity="warning"
            )
            return
        from picsellia_tui.tui.dialogs.confirm import ConfirmDialog

        def done(yes: bool | None) -> None:
            if yes:
                self._cancel(job.id)

        self.app.push_screen(
            ConfirmDialog(
                f"Cancel job {job.id}?",
                f"Stops its {job.status} run #{job.attempts} of {job.processing} on {job.target}.",
                confirm="Cancel run",
                cancel="Keep running",
                danger=True,
            ),
            done,
        )

    @work(thread=True, exit_on_error=False, group="jobs-action")
    def _cancel(self, job_id: int) -> None:
        try:
            run = self.engine_call(lambda e: e.cancel(job_id))
        except EngineError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self.app.notify, f"Job {job_id}: cancelling run #{run.attempt}…")
        self._need_changes = True
        self._need_detail = True


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
