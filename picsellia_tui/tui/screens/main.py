"""The main screen: header, the three tabs, footer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane

from picsellia_tui.tui.widgets.header import StatusHeader
from picsellia_tui.tui.widgets.jobs import JobsPane
from picsellia_tui.tui.widgets.processings import ProcessingsPane
from picsellia_tui.tui.widgets.versions import VersionsPane

TABS = {"processings": "#proc-table", "versions": "#versions-table", "jobs": "#jobs-table"}


class MainScreen(Screen[None]):
    # Focus is placed explicitly: Textual's auto-focus picks the first focusable
    # widget of the screen, which lives in another tab and would switch to it.
    AUTO_FOCUS = None

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        with TabbedContent(initial="processings", id="tabs"):
            with TabPane("1 Processings", id="processings"):
                yield ProcessingsPane(id="processings-pane")
            with TabPane("2 ModelVersions", id="versions"):
                yield VersionsPane(id="versions-pane")
            with TabPane("3 Jobs", id="jobs"):
                yield JobsPane(id="jobs-pane")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TABS["processings"]).focus()

    @property
    def active_tab(self) -> str:
        return self.query_one(TabbedContent).active

    def show_tab(self, tab: str) -> None:
        tabs = self.query_one(TabbedContent)
        if tabs.active != tab:
            tabs.active = tab
        if not self._focus_in(tab):
            self.query_one(TABS[tab]).focus()

    def _focus_in(self, tab: str) -> bool:
        focused = self.focused
        pane = self.query_one(f"TabPane#{tab}")
        return focused is not None and (focused is pane or pane in focused.ancestors)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        tab = event.pane.id
        if tab in TABS and tab == self.active_tab and not self._focus_in(tab):
            self.query_one(TABS[tab]).focus()

    def on_screen_resume(self) -> None:
        tab = self.active_tab
        if tab in TABS and not self._focus_in(tab):
            self.query_one(TABS[tab]).focus()
