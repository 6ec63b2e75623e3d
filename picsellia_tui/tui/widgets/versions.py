"""The ModelVersions tab: every model's versions, a detail panel with files and
lineage; launch on a version, jump to the job that produced it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table as RichTable
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from picsellia_tui.engine.errors import EngineError
from picsellia_tui.tui.messages import LaunchRequest, LaunchRequested, ShowJob, ViewMounted
from picsellia_tui.tui.widgets.base import EngineAccess, Table
from picsellia_tui.tui.widgets.format import Clock, key_metrics, metric_value, size, truncate

if TYPE_CHECKING:
    from picsellia_tui.engine.views import VersionView


class VersionsTable(Table):
    BINDINGS = [Binding("enter", "select_cursor", "Launch")]


class VersionsPane(EngineAccess, Vertical):
    BINDINGS = [
        Binding("l", "launch", "Launch"),
        Binding("o", "origin_job", "Origin job"),
        Binding("ctrl+r", "reload", "Reload", show=False),
    ]

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.versions: dict[str, VersionView] = {}
        self.details: dict[int, VersionView] = {}

    def compose(self) -> ComposeResult:
        table = VersionsTable(id="versions-table")
        table.add_column("version", key="ref")
        table.add_column("framework", key="framework")
        table.add_column("tags", key="tags")
        table.add_column("key metrics", key="metrics")
        table.add_column("size", key="size")
        table.add_column("origin", key="origin")
        yield table
        with VerticalScroll(id="version-detail-box", classes="detail"):
            yield Static("", id="version-detail")

    def on_mount(self) -> None:
        self.load()
        self.post_message(ViewMounted("versions"))  # mounted lazily: its tab may be shown

    @work(exit_on_error=False, exclusive=True, group="versions")
    async def load(self) -> None:
        # Exclusive: a newer load cancels this one, at its await.
        self._loaded(await self.engine_await(lambda e: e.versions()))

    def _loaded(self, rows: list[VersionView]) -> None:
        table = self.query_one(VersionsTable)
        keep = table.cursor_key
        fresh = {v.ref: v for v in rows}
        for ref in list(self.versions):
            if ref not in fresh:
                table.remove_row(ref)
                del self.versions[ref]
        added = False
        for v in rows:
            cells = self._cells(v)
            if v.ref in self.versions:
                if self.versions[v.ref] != v:
                    for col, value in zip(
                        ("ref", "framework", "tags", "metrics", "size", "origin"),
                        cells,
                        strict=True,
                    ):
                        table.update_cell(v.ref, col, value, update_width=True)
                    self.details.pop(v.id, None)
            else:
                table.add_row(*cells, key=v.ref)
                added = True
            self.versions[v.ref] = v
        if added:
            order = {v.ref: i for i, v in enumerate(rows)}
            table.sort("ref", key=lambda cell: order.get(cell.plain, 0))
        if keep is None or not table.select_key(keep):
            if rows:
                table.move_cursor(row=0)
        self._show_detail()

    def _cells(self, v: VersionView) -> tuple[object, ...]:
        return (
            Text(v.ref),
            v.framework,
            truncate(", ".join(v.tags), 24) or "-",
            key_metrics(v.metrics),
            size(v.size_bytes),
            Text(
                f"job {v.origin_job_id}" if v.origin_job_id else "imported",
                style="" if v.origin_job_id else "dim",
            ),
        )

    def selected(self) -> VersionView | None:
        key = self.query_one(VersionsTable).cursor_key
        return self.versions.get(key) if key else None

    @on(DataTable.RowHighlighted, "#versions-table")
    def _highlighted(self) -> None:
        self._show_detail()

    @on(DataTable.RowSelected, "#versions-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_launch()

    def _show_detail(self) -> None:
        v = self.selected()
        detail = self.query_one("#version-detail", Static)
        if v is None:
            detail.update(
                Text(
                    "No model versions yet: import one with "
                    "`picsellia-tui models import MODEL/VERSION FILES…`",
                    style="dim",
                )
            )
            return
        full = self.details.get(v.id)
        detail.update(render_version(full or v, self.clock, loading=full is None))
        if full is None:
            self._load_detail(v.ref)

    @work(exit_on_error=False, exclusive=True, group="version-detail")
    async def _load_detail(self, ref: str) -> None:
        try:
            full = await self.engine_await(lambda e: e.version(ref))
        except EngineError:
            return
        self.details[full.id] = full
        v = self.selected()
        if v is not None and v.id == full.id:
            self.query_one("#version-detail", Static).update(render_version(full, self.clock))

    # -- actions -------------------------------------------------------------------------

    def action_launch(self) -> None:
        v = self.selected()
        if v is None:
            self.app.notify("Select a model version first.", severity="warning")
            return
        self.post_message(LaunchRequested(LaunchRequest(version=v)))

    def action_origin_job(self) -> None:
        v = self.selected()
        if v is None:
            return
        if v.origin_job_id is None:
            self.app.notify(f"{v.ref} was imported: no job produced it.", severity="warning")
            return
        self.post_message(ShowJob(v.origin_job_id, follow=False))

    def action_reload(self) -> None:
        self.load()


def render_version(v: VersionView, clock: Clock, loading: bool = False) -> Group:
    parts: list[RenderableType] = [
        Text.assemble(
            (v.ref, "bold"),
            (f"  id {v.id}", "dim"),
            ("  ", ""),
            (v.framework, ""),
            ("  ", ""),
            (size(v.size_bytes), ""),
            ("  created ", "dim"),
            (clock.when(v.created_at), ""),
            (" by ", "dim"),
            (v.created_by or "-", ""),
        )
    ]
    if v.description:
        parts.append(Text(v.description))
    lineage = Text.assemble(("lineage ", "dim"))
    if v.parent:
        lineage.append(f"{v.parent} → ")
    lineage.append(v.ref, style="bold")
    if v.origin_job_id:
        lineage.append(f"  made by job {v.origin_job_id} ", style="")
        lineage.append("(o: open it)", style="dim")
    else:
        lineage.append("  imported", style="dim")
    parts.append(lineage)
    parts.append(Text.assemble(("tags ", "dim"), (", ".join(v.tags) or "-", "")))
    labels = ", ".join(v.labels[:20]) + (
        f" … (+{len(v.labels) - 20})" if len(v.labels) > 20 else ""
    )
    parts.append(Text.assemble(("labels ", "dim"), (labels or "-", "")))
    if v.metrics:
        parts.append(
            Text.assemble(
                ("metrics ", "dim"),
                (", ".join(f"{k} {metric_value(x, k)}" for k, x in v.metrics.items()), ""),
            )
        )
    if loading:
        parts.append(Text("files: loading…", style="dim"))
    elif v.files:
        grid = RichTable.grid(padding=(0, 2))
        grid.add_column()
        grid.add_column(justify="right")
        grid.add_column(style="dim")
        for f in v.files[:200]:
            grid.add_row(f.path, size(f.size), f.sha256[:12])
        parts.append(Text(f"files ({len(v.files)})", style="dim"))
        parts.append(grid)
    return Group(*parts)
