"""The main screen: header, the three tabs, footer.

When the app starts its own engine (`app.lazy_views`), the hidden tabs' views
are mounted lazily, right after the first frame (which then costs only the
header, the Processings tab and the footer). Given a started engine (tests,
benches) they are composed at once, so they can be queried from the start."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.lazy import Lazy
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, TabbedContent, TabPane

from picsellia_tui.tui.messages import ViewMounted
from picsellia_tui.tui.widgets.header import StatusHeader
from picsellia_tui.tui.widgets.jobs import JobsPane
from picsellia_tui.tui.widgets.jobs_table import JobsTable
from picsellia_tui.tui.widgets.processings import ProcessingsPane
from picsellia_tui.tui.widgets.versions import VersionsPane


class LazyView(Lazy):
    """Textual's Lazy, giving up quietly when its tab is gone before its turn
    comes (the app closes at once when its engine cannot start)."""

    async def mount_composed_widgets(self, widgets: list[Widget]) -> None:
        parent = self.parent
        if not isinstance(parent, Widget):
            return

        async def mount() -> None:
            if not parent.is_attached or not self.is_attached:
                return
            await parent.mount(self._replace_widget, after=self)
            await self.remove()

        self.call_after_refresh(mount)


TABS = {"processings": "#proc-table", "versions": "#versions-table", "jobs": "#jobs-table"}


class MainScreen(Screen[None]):
    # Focus is placed explicitly: Textual's auto-focus picks the first focusable
    # widget of the screen, which lives in another tab and would switch to it.
    AUTO_FOCUS = None

    def __init__(self, *, lazy_views: bool = False, engine_ready: bool = True) -> None:
        super().__init__()
        self.lazy_views = lazy_views
        self.engine_ready = engine_ready

    def compose(self) -> ComposeResult:
        def lazy(view: Widget) -> Widget:
            return LazyView(view) if self.lazy_views else view

        yield StatusHeader(starting=not self.engine_ready, id="header")
        with TabbedContent(initial="processings", id="tabs"):
            with TabPane("1 Processings", id="processings"):
                yield ProcessingsPane(id="processings-pane")
            with TabPane("2 ModelVersions", id="versions"):
                yield lazy(VersionsPane(id="versions-pane"))
            with TabPane("3 Jobs", id="jobs"):
                yield lazy(JobsPane(id="jobs-pane"))
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TABS["processings"]).focus()

    def _focus_tab(self, tab: str) -> bool:
        """Focus the tab's main table; False while its lazy view is not mounted."""
        for widget in self.query(TABS[tab]):
            widget.focus()
            return True
        return False

    def on_view_mounted(self, message: ViewMounted) -> None:
        """A lazily mounted view is in: focus it if its tab was shown meanwhile."""
        tab = message.tab
        if tab == self.active_tab and not self._focus_in(tab):
            self._focus_tab(tab)

    def on_jobs_table_counted(self, message: JobsTable.Counted) -> None:
        self.query_one(TabbedContent).get_tab("jobs").label = f"3 Jobs ({message.total:,})"

    @property
    def active_tab(self) -> str:
        return self.query_one(TabbedContent).active

    def show_tab(self, tab: str) -> None:
        if self.maximized is not None:
            # A zoomed widget (the Jobs log) would stay drawn over the other tab.
            self.minimize()
        tabs = self.query_one(TabbedContent)
        if tabs.active != tab:
            tabs.active = tab
        if not self._focus_in(tab) and not self._focus_tab(tab):
            # The tab's view is not mounted yet (start-up): the widget focused in
            # the tab being hidden must not keep focus, or Textual hands it to a
            # sibling in that same tab, which switches back to it (the key is lost).
            self.set_focus(None)

    def _focus_in(self, tab: str) -> bool:
        return self.query_one(f"TabPane#{tab}", TabPane).has_focus_within

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        tab = event.pane.id
        if tab in TABS and tab == self.active_tab and not self._focus_in(tab):
            self._focus_tab(tab)

    def on_screen_resume(self) -> None:
        tab = self.active_tab
        if tab in TABS and not self._focus_in(tab):
            self._focus_tab(tab)
