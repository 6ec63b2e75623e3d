"""Every key of the app in one place: the help screen and the command palette
are built from the views' own BINDINGS, so neither can drift from the code."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from picsellia_tui.tui.messages import RunViewAction

if TYPE_CHECKING:
    from textual.app import App

GLOBAL_BINDINGS = [
    Binding("1", "show_tab('processings')", "Processings"),
    Binding("2", "show_tab('versions')", "ModelVersions"),
    Binding("3", "show_tab('jobs')", "Jobs"),
    Binding("question_mark", "help", "Help"),
    Binding("ctrl+p", "command_palette", "Commands", show=False),
    Binding("q", "quit", "Quit"),
    Binding("ctrl+c", "quit", "Quit", show=False),
]

# Keys the widgets handle themselves, listed for the help screen.
NAVIGATION = [
    ("↑ ↓ / pgup pgdn / home end", "Move in a list or scroll"),
    ("tab / shift+tab", "Next / previous pane"),
    ("esc", "Close a dialog, a filter or the search bar"),
]

_KEY_NAMES = {
    "slash": "/",
    "question_mark": "?",
    "escape": "esc",
    "enter": "enter",
}


@dataclass(frozen=True)
class Section:
    title: str
    tab: str | None  # the tab to show before running an action
    selector: str | None  # the widget that runs the actions (None: the app)
    bindings: tuple[Binding, ...]


def key_label(keys: str) -> str:
    out = []
    for key in keys.split(","):
        key = key.strip()
        out.append(_KEY_NAMES.get(key, key))
    return " / ".join(out)


def _own(cls: type, *, skip_forwarded: bool = True) -> tuple[Binding, ...]:
    out = []
    for b in getattr(cls, "BINDINGS", []):
        if not isinstance(b, Binding):
            b = Binding(*b)
        if skip_forwarded and b.action.startswith("log("):
            continue  # the same keys as the log pane's, listed there
        out.append(b)
    return tuple(out)


def sections() -> list[Section]:
    from picsellia_tui.tui.dialogs.build import BuildDialog
    from picsellia_tui.tui.dialogs.launch import LaunchDialog
    from picsellia_tui.tui.dialogs.new_processing import NewProcessingDialog
    from picsellia_tui.tui.dialogs.update_processing import UpdateProcessingDialog
    from picsellia_tui.tui.widgets.jobs import JobsPane
    from picsellia_tui.tui.widgets.jobs_table import JobsTable
    from picsellia_tui.tui.widgets.log_view import LogView
    from picsellia_tui.tui.widgets.processings import ProcessingsPane, ProcessingsTable
    from picsellia_tui.tui.widgets.versions import VersionsPane, VersionsTable

    return [
        Section("Everywhere", None, None, tuple(GLOBAL_BINDINGS)),
        Section(
            "Processings (1)",
            "processings",
            "ProcessingsPane",
            _own(ProcessingsTable) + _own(ProcessingsPane),
        ),
        Section(
            "ModelVersions (2)",
            "versions",
            "VersionsPane",
            _own(VersionsTable) + _own(VersionsPane),
        ),
        Section("Jobs (3)", "jobs", "JobsPane", _own(JobsTable) + _own(JobsPane)),
        Section("Log pane (Jobs tab)", "jobs", "#job-log", _own(LogView)),
        Section("Launch dialog", None, "LaunchDialog", _own(LaunchDialog)),
        Section(
            "New processing dialog (n)", None, "NewProcessingDialog", _own(NewProcessingDialog)
        ),
        Section("Update dialog (u)", None, "UpdateProcessingDialog", _own(UpdateProcessingDialog)),
        Section("Build dialog (b)", None, "BuildDialog", _own(BuildDialog)),
    ]


def help_rows() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """(section, [(keys, what they do)]); keys doing the same thing share a row."""
    for s in sections():
        merged: dict[str, list[str]] = {}
        for b in s.bindings:
            if not b.description:
                continue
            keys = merged.setdefault(b.description, [])
            label = key_label(b.key)
            if label not in keys:
                keys.append(label)
        yield s.title, [(" / ".join(keys), desc) for desc, keys in merged.items()]
    yield "Navigation", list(NAVIGATION)


@dataclass(frozen=True)
class PaletteEntry:
    title: str
    help: str
    callback: Callable[[], Any]


def palette_entries(app: App[Any]) -> list[PaletteEntry]:
    """One command per action of every view (dialog-only keys excluded)."""
    out: list[PaletteEntry] = []
    for s in sections():
        if s.tab is None and s.selector is not None:
            continue  # a dialog's keys: they work in the dialog only
        seen = set()
        for b in s.bindings:
            if b.action in seen or b.action in ("select_cursor", "command_palette"):
                continue
            if b.key == "escape" or not b.description:
                continue
            seen.add(b.action)
            where = s.title.split(" (")[0]
            title = f"{where}: {b.description}" if s.tab else b.description
            help_text = escape(f"{b.tooltip or b.description}  (key: {key_label(b.key)})")

            def run(s: Section = s, action: str = b.action) -> None:
                app.post_message(RunViewAction(s.tab, s.selector, action))

            out.append(PaletteEntry(title, help_text, run))
    return out


class ActionsProvider(Provider):
    """The command palette's list: every action of the app."""

    async def discover(self) -> Hits:
        for entry in palette_entries(self.app):
            yield DiscoveryHit(entry.title, entry.callback, help=entry.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for entry in palette_entries(self.app):
            score = matcher.match(entry.title)
            if score > 0:
                yield Hit(score, matcher.highlight(entry.title), entry.callback, help=entry.help)
