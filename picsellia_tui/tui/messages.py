"""Messages the views exchange. Engine events arrive as `EngineEvent`, posted from
the engine's thread (Textual's post_message is thread-safe)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from picsellia_tui.engine.events import Event


class EngineEvent(Message):
    """One engine event (JobCreated, RunChanged, LogAppended, ...)."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class LaunchRequested(Message):
    """Open the launch modal; any side left None is picked in the modal."""

    def __init__(
        self,
        processing: str | None = None,
        version: str | None = None,
        params: dict[str, Any] | None = None,
        output_version_name: str | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__()
        self.processing = processing
        self.version = version
        self.params = params
        self.output_version_name = output_version_name
        self.title = title


class ViewMounted(Message):
    """A tab's view was mounted (lazily, after the first frame): its tab may be
    shown already, and then wants the focus."""

    def __init__(self, tab: str) -> None:
        super().__init__()
        self.tab = tab


class ShowJob(Message):
    """Switch to the Jobs tab on this job (its latest run, log following)."""

    def __init__(self, job_id: int, follow: bool = True) -> None:
        super().__init__()
        self.job_id = job_id
        self.follow = follow
