"""The Jobs tab: the jobs list (`JobsTable`), the selected job's detail
(`JobDetail`: summary, run history, error summary) and the log of the run it shows
(`RunLog`). The three talk by messages through this pane, which also holds the
tab's actions (re-run, cancel, zoom, the log keys) and hands engine events on.
Nothing polls: with nothing happening no timer runs, except the 1 s tick of the
duration of a running run while one is on screen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable

from picsellia_tui.engine.errors import EngineError, RerunRefused
from picsellia_tui.storage.params import MASK
from picsellia_tui.tui.messages import LaunchRequest, LaunchRequested, ViewMounted
from picsellia_tui.tui.widgets.base import EngineAccess
from picsellia_tui.tui.widgets.job_detail import JobDetail
from picsellia_tui.tui.widgets.jobs_table import JobsTable
from picsellia_tui.tui.widgets.run_log import RunLog

if TYPE_CHECKING:
    from picsellia_tui.engine.events import Event
    from picsellia_tui.engine.views import JobView, ProcessingView, RunView, VersionView


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
        self.table = JobsTable(id="jobs-table")
        self.detail = JobDetail(id="job-detail")
        self.run_log = RunLog(id="job-log")

    def compose(self) -> ComposeResult:
        yield self.table
        yield self.detail
        yield self.run_log

    def on_mount(self) -> None:
        self.post_message(ViewMounted("jobs"))  # mounted lazily: its tab may be shown

    def on_show(self) -> None:
        # A log set while the tab was hidden was laid out at height 0.
        self.call_after_refresh(self.run_log.to_bottom)
        self.table.kick(0)  # the rows now on screen may lack their durations

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
            if ev.run_id == self.run_log.run_id:
                self.run_log.refresh_source()
        elif isinstance(ev, JobCreated):
            self.table.mark_changed()
        elif isinstance(ev, ExternalChange | Resync):
            self.table.mark_changed()
            self.detail.mark_stale()
        elif isinstance(ev, RunChanged):
            self.table.mark_changed()
            self.detail.mark_stale(ev.job_id)

    # -- between the list, the detail and the log ----------------------------------------------

    @on(DataTable.RowHighlighted, "#jobs-table")
    def _job_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value is not None:
            self.detail.show_job(int(event.row_key.value))

    @on(JobsTable.JobSelected)
    def _job_selected_by_list(self, event: JobsTable.JobSelected) -> None:
        self.detail.show_job(event.job_id, at_once=True)

    @on(JobsTable.Counted)
    def _counted(self, event: JobsTable.Counted) -> None:
        # Not stopped: the screen shows the count on the tab.
        if event.total == 0:
            self.detail.show_empty()

    @on(DataTable.RowSelected, "#jobs-table")
    @on(DataTable.RowSelected, "#runs-table")
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.run_log.focus()

    @on(JobDetail.Loaded)
    def _detail_loaded(self, event: JobDetail.Loaded) -> None:
        self.table.update_job(event.job)

    @on(JobDetail.RunShown)
    def _run_shown(self, event: JobDetail.RunShown) -> None:
        self.run_log.show_run(event.job, event.run, self.settings.export_dir)

    def focus_job(self, job_id: int, follow: bool = True) -> None:
        """Select a job (loading it when it is not in the loaded pages) and show its
        latest run's log."""
        self.run_log.want_follow = follow
        self.detail.pin_latest = True
        self.table.focus_job(job_id)

    def selected_job(self) -> JobView | None:
        job = self.table.selected()
        current = self.detail.current
        if job is not None and current is not None and current.id == job.id:
            # The detail is the freshest view of the selected job.
            if current.updated_at >= job.updated_at:
                return current
        return job

    # -- actions -------------------------------------------------------------------------

    async def action_log(self, action: str) -> None:
        if action == "search":
            self.run_log.focus()
        await self.run_log.run_action(action)

    def action_zoom_log(self) -> None:
        if self.screen.maximized is not None:
            self.screen.minimize()
        else:
            self.run_log.focus()
            self.screen.maximize(self.run_log, container=False)

    def action_reload(self) -> None:
        self.table.mark_changed()
        self.detail.mark_stale()

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
        current = self.detail.current
        runs = current.runs if current is not None and current.id == job.id else []
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

    @work(exit_on_error=False, group="jobs-action")
    async def _rerun(self, job_id: int, same_image: bool = False) -> None:
        try:
            run = await self.engine_await(lambda e: e.rerun(job_id, same_image=same_image))
        except RerunRefused as exc:
            self.app.notify(str(exc), title="Re-run refused", severity="warning")
            return
        except EngineError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self._rerun_done(run)

    def _rerun_done(self, run: RunView) -> None:
        self.app.notify(f"Job {run.job_id}: run #{run.attempt} queued.")
        current = self.detail.current
        if current is not None and current.id == run.job_id:
            self.detail.pin_latest = True
            self.run_log.follow = True
            self.detail.mark_stale()
        self.table.mark_changed()

    def action_edit_rerun(self) -> None:
        job = self.selected_job()
        if job is None:
            self.app.notify("No job selected.", severity="warning")
            return
        self._edit_rerun(job)

    @work(exit_on_error=False, group="jobs-action")
    async def _edit_rerun(self, job: JobView) -> None:
        async def views(e: Any) -> tuple[ProcessingView, VersionView]:
            return await e.processing(job.processing), await e.version(job.target)

        try:
            proc, version = await self.engine_await(views)
        except EngineError as exc:  # the processing or the version is gone
            self.app.notify(str(exc), severity="error")
            return
        params = {k: v for k, v in job.parameters.items() if v != MASK}
        title = f"Edit and re-run job {job.id} (a new job)"
        request = LaunchRequest(proc, version, params, title=title, host=job.host)
        self.post_message(LaunchRequested(request))

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

    @work(exit_on_error=False, group="jobs-action")
    async def _cancel(self, job_id: int) -> None:
        try:
            run = await self.engine_await(lambda e: e.cancel(job_id))
        except EngineError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.app.notify(f"Job {job_id}: cancelling run #{run.attempt}…")
        self.table.mark_changed()
        self.detail.mark_stale()
