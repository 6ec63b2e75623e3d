"""The Processings tab: the registry grouped by target type, with a detail panel
(parameters, constraints, whether the image is on the Docker host).

`n` creates a private processing, `u` updates the selected one from its folder,
`b` builds its image, `d` removes it; public processings are read-only (`u` and
`d` say so). The list follows changes made by this app, by the command line or by
another app (engine events), without ctrl+r."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table as RichTable
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from picsellia_tui.engine.errors import EngineError, read_only
from picsellia_tui.tui.messages import LaunchRequest, LaunchRequested
from picsellia_tui.tui.widgets.base import EngineAccess, Table
from picsellia_tui.tui.widgets.format import (
    TARGET_TITLES,
    confinement_asked,
    constraints_summary,
    num,
    truncate,
)

if TYPE_CHECKING:
    from picsellia_tui.engine.events import Event
    from picsellia_tui.engine.views import BuildView, ProcessingView

GROUP_PREFIX = "group:"
RELOAD_DELAY = 0.3  # changes within this window cost one reload


class ProcessingsTable(Table):
    BINDINGS = [Binding("enter", "select_cursor", "Launch")]


class ProcessingsPane(EngineAccess, Vertical):
    """Processings, one group per target type."""

    BINDINGS = [
        Binding("n", "new", "New"),
        Binding("u", "update", "Update"),
        Binding("b", "build", "Build image"),
        Binding("d", "remove", "Remove"),
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
        self._reload_timer: Timer | None = None
        self._want: str | None = None  # select this processing once it is listed

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

    # -- engine events -------------------------------------------------------------------

    def engine_event(self, ev: Event) -> None:
        from picsellia_tui.engine.events import (
            BuildEnded,
            ExternalChange,
            ProcessingsChanged,
            Resync,
        )

        if isinstance(ev, BuildEnded):
            self.load_presence()
        elif isinstance(ev, ProcessingsChanged | ExternalChange | Resync):
            # ExternalChange: another process committed (maybe a processing).
            if self._reload_timer is None and self.is_mounted:
                self._reload_timer = self.set_timer(RELOAD_DELAY, self._reload_now)

    def _reload_now(self) -> None:
        self._reload_timer = None
        self.load(changed_only=True)

    # -- data ----------------------------------------------------------------------------

    @work(exit_on_error=False, exclusive=True, group="processings")
    async def load(self, changed_only: bool = False) -> None:
        """Read the list (then which images the host has). `changed_only`: an
        event said something changed somewhere; the table is refilled, and the
        Docker host asked again, only if the list differs."""
        procs = await self.engine_await(lambda e: e.processings())
        if changed_only and procs == self.processings:
            return
        self._loaded(procs)
        self._presence_loaded(await self.engine_await(lambda e: e.image_presence()))

    @work(exit_on_error=False, exclusive=True, group="processings-presence")
    async def load_presence(self) -> None:
        self._presence_loaded(await self.engine_await(lambda e: e.image_presence()))

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
        if self._want is not None and table.select_key(self._want):
            self._want = None
            self._show_detail()
            return
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
        self.post_message(LaunchRequested(LaunchRequest(processing=p)))

    def select(self, name: str) -> None:
        """Put the cursor on this processing (now, or once it is listed)."""
        if not self.query_one(ProcessingsTable).select_key(name):
            self._want = name
        self.query_one(ProcessingsTable).focus()

    def _changeable(self, what: str) -> ProcessingView | None:
        """The selected processing, if the user may change it (else one line why)."""
        p = self.selected()
        if p is None:
            self.app.notify("Select a processing first.", severity="warning")
            return None
        if p.visibility == "public":
            self.app.notify(read_only(p.name, what), severity="warning")
            return None
        return p

    def action_new(self) -> None:
        from picsellia_tui.tui.dialogs.new_processing import NewProcessingDialog

        def done(view: ProcessingView | None) -> None:
            if view is None:
                return
            where = f" in {view.source_dir}" if view.source_dir else ""
            self.app.notify(
                f"Private processing {view.name} {view.version} saved{where} (image {view.image}).",
                title="Processing created",
            )
            self.select(view.name)

        self.app.push_screen(NewProcessingDialog(), done)

    def action_update(self) -> None:
        from picsellia_tui.tui.dialogs.update_processing import UpdateProcessingDialog

        p = self._changeable("updated")
        if p is None:
            return

        def done(view: ProcessingView | None) -> None:
            if view is not None:
                self.app.notify(f"{view.name} {view.version} updated.", title="Processing saved")
                self.select(view.name)

        self.app.push_screen(UpdateProcessingDialog(p.name), done)

    def action_build(self) -> None:
        from picsellia_tui.tui.dialogs.build import BuildDialog

        p = self.selected()
        if p is None:
            self.app.notify("Select a processing first.", severity="warning")
            return
        if not p.source_dir:
            self.app.notify(
                f"{p.name} was registered from an image: there is no folder to build.",
                severity="warning",
            )
            return

        def done(build: BuildView | None) -> None:
            self.load_presence()  # also when the event was missed (closed before the end)
            self.query_one(ProcessingsTable).focus()

        self.app.push_screen(BuildDialog(p.name, p.image), done)

    def action_remove(self) -> None:
        from picsellia_tui.tui.dialogs.confirm import ConfirmDialog

        p = self._changeable("removed")
        if p is None:
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._remove(p.name)

        self.app.push_screen(
            ConfirmDialog(
                f"Remove {p.name}?",
                f"{p.name} leaves the list and cannot be launched any more; its jobs and "
                "their history stay in the Jobs tab. Its folder and image are kept.",
                confirm="Remove",
                danger=True,
            ),
            answer,
        )

    @work(exit_on_error=False, group="processings-remove")
    async def _remove(self, name: str) -> None:
        try:
            await self.engine_await(lambda e: e.remove_processing(name))
        except EngineError as exc:
            self.app.notify(str(exc), title="Remove refused", severity="warning")
            return
        self.app.notify(f"{name} removed.", title="Processing removed")
        self.load()

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
                f" · gpu {'yes' if c.gpu else 'no'} · network {'yes' if c.network else 'no'}"
                + "".join(f" · {x}" for x in confinement_asked(c)),
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
    return Text(
        f"✗ missing — build: picsellia-tui processings build {p.name} (or b)",
        style="bold red",
    )
