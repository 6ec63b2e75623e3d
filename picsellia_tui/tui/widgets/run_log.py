"""The log of the run the job detail shows, in the Jobs tab."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from picsellia_tui.tui.widgets.log_view import LogView

if TYPE_CHECKING:
    from picsellia_tui.engine.views import JobView, RunView

ACTIVE = ("pending", "running")


class RunLog(LogView):
    def __init__(self, **kw: Any) -> None:
        # Polls its file only while the shown run is active (see show_run); its save
        # folder is set with its first run (settings may still be loading).
        super().__init__(live=False, **kw)
        self.run_id: int | None = None
        self.want_follow: bool | None = None  # applied to the next run shown
        self._path: str | None = None

    def show_run(self, job: JobView, run: RunView, save_dir: Path) -> None:
        self.run_id = run.id
        # An active run's log grows: LogAppended events say so when this engine
        # captures it, polling the file covers another instance's. A finished
        # run's log is complete: no polling.
        self.live = run.status in ACTIVE
        self.save_dir = save_dir
        if self.want_follow is not None:
            self.follow = self.want_follow
            self.want_follow = None
        if self._path != run.log_path:
            self._path = run.log_path
            self.set_source(Path(run.log_path), save_name=f"job-{job.id}-run-{run.attempt}")
        else:
            self.refresh_source()
        # The error panel above may change the log's height: stay at the bottom.
        self.call_after_refresh(self.to_bottom)

    def to_bottom(self) -> None:
        if self.follow:
            self.log_lines.scroll_to_bottom()
