"""Messages the views exchange. Engine events arrive as `EngineEvent`, posted from
the engine's thread (Textual's post_message is thread-safe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from picsellia_tui.engine.events import Event
    from picsellia_tui.engine.views import ProcessingView, VersionView


class EngineEvent(Message):
    """One engine event (JobCreated, RunChanged, LogAppended, ...)."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


@dataclass(frozen=True)
class LaunchRequest:
    """What the launch modal opens on: the views known already (any side left None is
    picked in the modal), values to start from, a title, the host to offer first."""

    processing: ProcessingView | None = None
    version: VersionView | None = None
    params: dict[str, Any] = field(default_factory=dict)
    output_version_name: str | None = None
    title: str | None = None
    host: str | None = None  # the host preselected (None: the default host)


class LaunchRequested(Message):
    """Open the launch modal on this request."""

    def __init__(self, request: LaunchRequest) -> None:
        super().__init__()
        self.request = request


class ViewMounted(Message):
    """A tab's view was mounted (lazily, after the first frame): its tab may be
    shown already, and then wants the focus."""

    def __init__(self, tab: str) -> None:
        super().__init__()
        self.tab = tab


class RunViewAction(Message):
    """Run a view's action (a command of the palette): `tab` shown first, the action
    run on the first widget matching `selector` (None: on the app)."""

    def __init__(self, tab: str | None, selector: str | None, action: str) -> None:
        super().__init__()
        self.tab = tab
        self.selector = selector
        self.action = action


class ShowJob(Message):
    """Switch to the Jobs tab on this job (its latest run, log following)."""

    def __init__(self, job_id: int, follow: bool = True) -> None:
        super().__init__()
        self.job_id = job_id
        self.follow = follow
