"""The Processings tab: the registry grouped by target type, with a detail panel
(parameters, constraints, whether the image is on the Docker host)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table as RichTable
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Static
from textual.worker import get_current_worker

from picsellia_tui.tui.messages import LaunchRequested
from picsellia_tui.tui.widgets.base import EngineAccess, Table
from picsellia_tui.tui.widgets.format import TARGET_TITLES, constraints_summary, num, truncate

if TYPE_CHECKING:
    from picsellia_tui.engine.views import ProcessingView

GROUP_PREFIX = "group:"


class ProcessingsTable(Table):
    BINDINGS = [Binding("enter", "select_cursor", "Launch")]


class ProcessingsPane(EngineAccess, Vertical):
    """Processings, one group per target type."""

    BINDINGS = [
        Binding("/", "filter", "Filter"),
        Binding("l", "launch", "Launch", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("ctrl+r", "reload", "Reload", show=False),
    ]

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.processings: list[ProcessingView] = []
        self.presence: dict[str, bool] | None = None
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="filter: name, task, description… (enter: back to list, esc: clear)",
            id="proc-filter",
            classes="filter -hidden",
        )
        table = ProcessingsTable(id="proc-table")
        table.add_column("", key="vis", width=7)
        table.add_column("name", key="name")
        table.add_column("task", key="task")
        table.add_column("constraints", key="constraints")
        table.add_column("description", key="description")
        yield table
        with VerticalScroll(id="proc-detail-box", classes="detail"):
            yield Static("", id="proc-detail")

    def on_mount(self) -> None:
        self.load()

    # -- data ----------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, exclusive=True, group="processings")
    def load(self) -> None:
        procs = self.engine_call(lambda e: e.processings())
        if get_current_worker().is_cancelled:
            return
        self.app.call_from_thread(self._loaded, procs)
        presence = self.engine_call(lambda e: e.image_presence())
        self.app.call_from_thread(self._presence_loaded, presence)

    def _loaded(self, procs: list[ProcessingView]) -> None:
        self.processings = procs
        self._fill()

    def _presence_loaded(self, presence: dict[str, bool]) -> None:
        self.presence = presence
        self._show_detail()

    def filtered(self) -> list[ProcessingView]:
        """The processings the filter lets through."""
        needle = self.filter_text.lower().strip()
        if not needle:
            return self.processings
        return [
            p
            for p in self.processings
            if needle
            in " ".join((p.name, p.task, p.description, p.target_type, p.visibility)).lower()
        ]

    def _fill(self) -> None:
        table = self.query_one(ProcessingsTable)
        keep = table.cursor_key
        table.clear()
        shown = self.filtered()
        for target, title in TARGET_TITLES.items():
            group = [p for p in shown if p.target_type == target]
            table.add_row(
                "",
                Text(f"▾ {title}", style="bold"),
                Text(f"{len(group)} processing{'s' if len(group) != 1 else ''}", style="dim"),
                "",
                "",
                key=GROUP_PREFIX + target,
            )
            for p in group:
                table.add_row(
                    Text(p.visibility, style="bold" if p.visibility == "private" else "dim"),
                    Text("  " + p.name),
                    p.task,
                    constraints_summary(p.constraints),
                    truncate(p.description, 48),
                    key=p.name,
                )
        if keep is None or keep.startswith(GROUP_PREFIX) or not table.select_key(keep):
            first = next((p for tt in TARGET_TITLES for p in shown if p.target_type == tt), None)
            if first is not None:
                table.select_key(first.name)
            elif keep is not None:
                table.select_key(keep)
        self._show_detail()

    # -- selection and detail ------------------------------------------------------------

    def selected(self) -> ProcessingView | None:
        key = self.query_one(ProcessingsTable).cursor_key
        return next((p for p in self.processings if p.name == key), None)

    @on(DataTable.RowHighlighted, "#proc-table")
    def _highlighted(self) -> None:
        self._show_detail()

    @on(DataTable.RowSelected, "#proc-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_launch()

    def _show_detail(self) -> None:
        detail = self.query_one("#proc-detail", Static)
        p = self.selected()
        if p is None:
            key = self.query_one(ProcessingsTable).cursor_key or ""
            title = TARGET_TITLES.get(key.removeprefix(GROUP_PREFIX), "")
            detail.update(
                Text(
                    f"{title} processings: select one to see its parameters and launch it (enter).",
                    style="dim",
                )
                if title
                else ""
            )
            return
        detail.update(render_processing(p, self.presence, self.settings.executor))

    # -- actions -------------------------------------------------------------------------

    def action_launch(self) -> None:
        p = self.selected()
        if p is None:
            self.app.notify("Select a processing first.", severity="warning")
            return
        if p.target_type != "model_version":
            self.app.notify(
                f"{p.name} targets a {TARGET_TITLES[p.target_type]}: only "
                "ModelVersion processings can be launched here.",
                severity="warning",
            )
            return
        self.post_message(LaunchRequested(processing=p.name))

    def action_filter(self) -> None:
        box = self.query_one("#proc-filter", Input)
        box.remove_class("-hidden")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#proc-filter", Input)
        if box.has_class("-hidden") and not self.filter_text:
            return
        box.value = ""
        box.add_class("-hidden")
        self.query_one(ProcessingsTable).focus()

    def action_reload(self) -> None:
        self.load()

    @on(Input.Changed, "#proc-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._fill()

    @on(Input.Submitted, "#proc-filter")
    def _filter_done(self) -> None:
        if not self.filter_text:
            self.query_one("#proc-filter", Input).add_class("-hidden")
        self.query_one(ProcessingsTable).focus()


def render_processing(
    p: ProcessingView, presence: dict[str, bool] | None, executor: str | None
) -> Group:
    head = Text.assemble(
        (p.name, "bold"),
        (f" {p.version}", ""),
        ("  ", ""),
        (p.visibility, "bold" if p.visibility == "private" else "dim"),
        (f" (owner {p.owner})" if p.owner else "", "dim"),
        ("  ", ""),
        (p.task, ""),
        ("  → ", "dim"),
        (p.output_mode, ""),
    )
    lines: list[RenderableType] = [head]
    if p.description:
        lines.append(Text(p.description))
    lines.append(
        Text.assemble(
            ("image ", "dim"), (p.image, ""), ("  ", ""), _image_state(p, presence, executor)
        )
    )
    c = p.constraints
    lines.append(
        Text.assemble(
            ("constraints ", "dim"),
            (
                f"frameworks {', '.join(c.frameworks) or 'any'} · files "
                f"{', '.join(c.required_files) or '-'} · cpu {c.cpu or '-'}"
                f" · memory {c.memory or '-'}"
                f" · gpu {'yes' if c.gpu else 'no'} · network {'yes' if c.network else 'no'}",
                "",
            ),
        )
    )
    if p.parameters:
        grid = RichTable.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_column(style="dim")
        grid.add_column()
        for s in p.parameters:
            if s.choices:
                rng = " | ".join(s.choices)
            elif s.min is not None or s.max is not None:
                rng = f"{num(s.min)}..{num(s.max)}"
            else:
                rng = ""
            default = "••••••" if s.secret and s.default else s.default
            kind = s.type + (" secret" if s.secret else "") + (" required" if s.required else "")
            grid.add_row(
                s.name,
                kind,
                f"= {default}" if default is not None else "",
                Text.assemble((rng + "  " if rng else "", "dim"), (s.help, "")),
            )
        lines.append(Text("parameters", style="dim"))
        lines.append(grid)
    else:
        lines.append(Text("no parameters", style="dim"))
    return Group(*lines)


def _image_state(p: ProcessingView, presence: dict[str, bool] | None, executor: str | None) -> Text:
    if executor == "process":
        return Text(f"(process executor: runs from {p.source_dir or 'its folder'})", style="dim")
    if presence is None:
        return Text("checking the Docker host…", style="dim")
    if p.name not in presence:
        return Text("image state unknown (the Docker host did not answer)", style="yellow")
    if presence[p.name]:
        return Text("✓ present on the host", style="green")
    return Text(f"✗ missing — build: picsellia-tui processings build {p.name}", style="bold red")
