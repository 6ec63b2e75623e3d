"""A safety net for Textual's toasts (textual 8.2.8).

Each Toast removes itself from its own one-shot timer, set when it mounts. Under
CPU load the e2e fix-and-re-run test saw four notices raised within ~3 s, while
modal screens were pushed and popped, stay drawn over the Jobs tab for minutes
with the app idle: those toasts' own removal never ran, and nothing else removes
a toast (App._unnotify from another toast does not refresh the racks). The exact
Textual path was not pinned down. So the app keeps its own timer per notice and,
when the notice is due, asks the current screen's rack to drop every toast whose
notification has expired (ToastRack.show reaps expired notifications first)."""

from __future__ import annotations

from typing import Any

from textual.css.query import NoMatches
from textual.widgets._toast import Toast, ToastRack

# After a notice's own timeout: its toast normally removed itself by then.
SWEEP_GRACE = 0.5


def stale_toasts(app: Any) -> list[Toast]:
    """The toasts drawn on the current screen whose notification expired or
    was forgotten by the app."""
    try:
        rack = app.screen.get_child_by_type(ToastRack)
    except NoMatches:
        return []
    live = app._notifications  # Notifications: `in` does not reap, has_expired does
    return [
        toast
        for toast in rack.query(Toast)
        if toast._notification.has_expired or toast._notification not in live
    ]


def sweep_toasts(app: Any) -> None:
    """Remove the current screen's stale toasts, if any."""
    if stale_toasts(app):
        app._refresh_notifications()
