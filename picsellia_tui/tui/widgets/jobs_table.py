"""The jobs list of the Jobs tab: jobs newest first, updated in place by key.

Big histories are paged: the first PAGE jobs load at once, the next page when the
cursor nears the end. Changes only mark the list stale and schedule one short
one-shot timer, which fetches the changed jobs (`jobs(changed_since=...)`), so a
burst of events costs one query. Durations need each job's latest run, which the
job list does not carry: they are fetched for the rows on screen only, a few at a
time, and tick each second while a running one is on screen (only then).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.message import Message
from textual.timer import Timer

from picsellia_tui.engine.errors import EngineError
from picsellia_tui.tui.widgets.base import EngineAccess, Table, tick_while
from picsellia_tui.tui.widgets.format import status_text

if TYPE_CHECKING:
    from picsellia_tui.engine.views import JobView, RunView

PAGE = 200
RUNS_BATCH = 40
TICK_DELAY = 0.2  # events within this window cost one query
JOB_COLUMNS = ("job", "status", "attempts", "processing", "target", "by", "when", "duration")
# Fixed widths: cells updated in place never re-measure a whole column (O(rows)).
JOB_WIDTHS = {"job": 6, "status": 11, "attempts": 8, "duration": 8}
OVERLAP = timedelta(seconds=2)  # re-read a little before the last change seen


class JobsTable(EngineAccess, Table):
    BINDINGS = [Binding("enter", "select_cursor", "Log", show=False)]

    class Counted(Message):
        """How many jobs there are (for the tab's label)."""

        def __init__(self, total: int) -> None:
            super().__init__()
            self.total = total

    class JobSelected(Message):
        """The list selected a job itself (its first page, a job asked for by
        `focus_job`): its detail is wanted now, not after the cursor rests."""

        def __init__(self, job_id: int) -> None:
            super().__init__()
            self.job_id = job_id

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        for col in JOB_COLUMNS:
            self.add_column(col, key=col, width=JOB_WIDTHS.get(col))
        self.jobs: dict[int, JobView] = {}
        self.latest_runs: dict[int, RunView] = {}  # job id -> its latest run, when known
        self._stale_runs: set[int] = set()  # jobs whose latest run changed since fetched
        self._runs_fetching = False
        self.total = 0
        self.last_seen: datetime | None = None
        self.oldest_page_id: int | None = None
        self.exhausted = False
        self.loaded = False
        self._want_job: int | None = None
        self._job_chosen = False  # focus_job was called: the first page keeps its pick
        self._need_changes = False
        self._fetching = False
        self._paging = False
        self._tick_timer: Timer | None = None  # the one-shot refresh, when pending
        self._duration_timer: Timer | None = None  # while a running row is on screen

    def on_mount(self) -> None:
        self.load_page()

    def on_resize(self) -> None:
        self.kick()

    def on_show(self) -> None:
        self.kick(0)  # the rows now on screen may lack their durations

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # Rows came into view: their durations (and maybe the next page) are wanted.
        if int(old_value) != int(new_value):
            self.kick()

    # -- what the pane tells it ------------------------------------------------------------

    def mark_changed(self) -> None:
        """Jobs may have changed (an engine event): fetch the changes shortly."""
        self._need_changes = True
        self.kick()

    def update_job(self, job: JobView) -> None:
        """The freshest view of one job (its detail was loaded)."""
        if job.runs:
            self.latest_runs[job.id] = job.runs[-1]
        if job.id in self.jobs:
            self._apply([job.model_copy(update={"runs": []})])

    def focus_job(self, job_id: int) -> None:
        """Select a job, loading it when it is not in the loaded pages."""
        self._job_chosen = True
        if job_id in self.jobs:
            self._select_job(job_id)
        else:
            self._want_job = job_id
            self._fetch_one(job_id)
        self.focus()

    def selected(self) -> JobView | None:
        key = self.cursor_key
        return None if key is None else self.jobs.get(int(key))

    # -- refresh -----------------------------------------------------------------------------

    def kick(self, delay: float = TICK_DELAY) -> None:
        """Something may be stale: refresh once, shortly (one timer for a burst)."""
        if self._tick_timer is None and self.is_mounted:
            self._tick_timer = self.set_timer(max(delay, 0.01), self._tick)

    def _tick(self) -> None:
        self._tick_timer = None
        self._tick_runs()
        if self._need_changes and not self._fetching and self.loaded:
            self._need_changes = False
            self._fetching = True
            self.fetch_changes(self.last_seen - OVERLAP if self.last_seen else None)

    def _fetched(self) -> None:
        """A fetch ended: what was marked stale while it ran is fetched now."""
        if self._need_changes or self._stale_runs:
            self.kick()

    @work(exit_on_error=False, group="jobs-page")
    async def load_page(self, before_id: int | None = None) -> None:
        async def go(e: Any) -> tuple[list[JobView], int]:
            return await e.jobs(limit=PAGE, before_id=before_id), await e.count_jobs()

        try:
            rows, total = await self.engine_await(go)
        finally:
            self._paging = False
            self._fetched()
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

    @work(exit_on_error=False, group="jobs-changes")
    async def fetch_changes(self, since: datetime | None) -> None:
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
            rows, total = await self.engine_await(go)
        finally:
            self._fetching = False
            self._fetched()
        self._show_total(total)
        floor = self.oldest_page_id
        # Jobs older than the loaded pages come with their page, not now.
        self._apply([j for j in rows if j.id in self.jobs or floor is None or j.id > floor])
        self.kick()

    def _show_total(self, total: int) -> None:
        if total != self.total or not self.loaded:
            self.total = total
            self.post_message(self.Counted(total))

    def _visible_ids(self) -> list[int]:
        top = int(self.scroll_y)
        rows = self.ordered_rows[top : top + self.size.height + 2]
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
        bottom = int(self.scroll_y) + self.size.height
        if not self.exhausted and not self._paging and bottom >= self.row_count - 20:
            self._paging = True
            self.load_page(self.oldest_page_id)

    @work(exit_on_error=False, group="jobs-runs")
    async def _fetch_runs(self, ids: list[int]) -> None:
        try:
            runs = await self.engine_await(lambda e: e.latest_runs(ids))
        finally:
            self._runs_fetching = False
            self._fetched()
        for job_id, run in runs.items():
            self.latest_runs[job_id] = run
            if self.has_key(str(job_id)):
                self.update_cell(str(job_id), "duration", self._duration(job_id))
        self._update_duration_timer()
        self.kick()  # more rows on screen may still lack their run

    @work(exit_on_error=False, group="jobs-one")
    async def _fetch_one(self, job_id: int) -> None:
        try:
            job = await self.engine_await(lambda e: e.job(job_id))
        except EngineError as exc:
            self.app.notify(str(exc), severity="error")
            return
        if job.runs:
            self.latest_runs[job.id] = job.runs[-1]
        self._apply([job.model_copy(update={"runs": []})])

    def _select_job(self, job_id: int) -> None:
        if self.select_key(str(job_id)):
            self._want_job = None
            self.post_message(self.JobSelected(job_id))

    # -- rows --------------------------------------------------------------------------------

    def _apply(self, rows: list[JobView]) -> None:
        """Update rows in place by key; new jobs are inserted in id order."""
        keep = self.cursor_key
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
                old = self._cells(before_job) if before_job != job else cells
                for col, value, before in zip(JOB_COLUMNS, cells, old, strict=True):
                    if value != before or col in ("status", "duration", "attempts"):
                        self.update_cell(key, col, value)
            else:
                self.add_row(*cells, key=key)
                added = True
            self.jobs[job.id] = job
            if self.last_seen is None or job.updated_at > self.last_seen:
                self.last_seen = job.updated_at
        if added:
            self.sort("job", key=lambda cell: -int(cell.plain), reverse=False)
            if keep is not None:
                self.select_key(keep, scroll=False)
        if self._want_job is not None and self.has_key(str(self._want_job)):
            self._select_job(self._want_job)
        self._update_duration_timer()
        if self._stale_runs:
            self.kick()

    def _cells(self, job: JobView) -> tuple[Any, ...]:
        return (
            Text(str(job.id), justify="right"),
            status_text(job.status),
            Text(str(job.attempts), justify="right"),
            job.processing,
            job.target,
            job.launched_by,
            self.clock.when(job.created_at),
            self._duration(job.id),
        )

    def _duration(self, job_id: int) -> str:
        run = self.latest_runs.get(job_id)
        return self.clock.duration(run.started_at, run.ended_at) if run else "-"

    def _running_on_screen(self) -> list[tuple[int, RunView]]:
        """(job id, its latest run) of the visible rows whose run is running."""
        out = []
        for job_id in self._visible_ids():
            run = self.latest_runs.get(job_id)
            if run is not None and run.status == "running":
                out.append((job_id, run))
        return out

    def _update_duration_timer(self) -> None:
        """Tick durations each second while a running row is on screen, only then."""
        if self.is_mounted:
            running = bool(self._running_on_screen())
            self._duration_timer = tick_while(
                self, self._duration_timer, running, self._tick_durations
            )

    def _tick_durations(self) -> None:
        running = self._running_on_screen()
        for job_id, run in running:
            self.update_cell(str(job_id), "duration", self.clock.duration(run.started_at, None))
        if not running:
            self._update_duration_timer()
