"""The update modal (`u` in the Processings tab): re-read a private processing's
processing.toml and show what would change (version, image, parameters,
constraints, ...) before anything is saved.

`enter`/`ctrl+s` saves what is shown (the engine refuses it if the file changed
meanwhile), `esc` cancels.
"""

from __future__ import annotations

from rich.table import Table as RichTable
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from picsellia_tui.engine.errors import EngineError
from picsellia_tui.engine.views import ProcessingUpdate, ProcessingView
from picsellia_tui.tui.widgets.base import EngineAccess


class UpdateProcessingDialog(EngineAccess, ModalScreen[ProcessingView | None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("enter", "save", "Save"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, name: str) -> None:
        super().__init__(classes="dialog")
        self.processing = name
        self.plan: ProcessingUpdate | None = None
        self.busy = True  # until the plan is read

    def compose(self) -> ComposeResult:
        with Vertical(id="update-box", classes="dialog-box") as box:
            box.border_title = f"Update {self.processing} from its folder"
            box.border_subtitle = "enter/ctrl+s save · esc cancel"
            yield Static(Text("reading processing.toml…", style="dim"), id="update-folder")
            with VerticalScroll(id="update-changes"):
                yield Static("", id="update-changes-text")
            yield Static("", id="update-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    "Save (ctrl+s)", id="update-go", variant="primary", compact=True, disabled=True
                )
                yield Button("Cancel (esc)", id="update-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#update-cancel", Button).focus()
        self._read()

    @work(exit_on_error=False, group="update-read")
    async def _read(self) -> None:
        name = self.processing
        try:
            plan = await self.engine_await(lambda e: e.plan_processing_update(name))
        except EngineError as exc:
            self._failed(str(exc))
            return
        self._planned(plan)

    def _planned(self, plan: ProcessingUpdate) -> None:
        self.plan = plan
        self.query_one("#update-folder", Static).update(
            Text.assemble(("folder ", "dim"), (plan.folder, ""))
        )
        text = self.query_one("#update-changes-text", Static)
        if not plan.changes:
            text.update(
                Text("Nothing to update: processing.toml says what is saved.", style="italic")
            )
            return
        grid = RichTable(box=None, padding=(0, 2), show_edge=False, expand=True)
        grid.add_column("changes", style="bold", no_wrap=True)
        grid.add_column("saved now", style="red")
        grid.add_column("processing.toml", style="green")
        for change in plan.changes:
            grid.add_row(change.what, change.before, change.after)
        text.update(grid)
        self.busy = False
        go = self.query_one("#update-go", Button)
        go.disabled = False
        go.label = f"Save {len(plan.changes)} change{'s' if len(plan.changes) != 1 else ''}"
        go.focus()

    def _failed(self, message: str) -> None:
        self.busy = False
        self.query_one("#update-go", Button).disabled = self.plan is None or not self.plan.changes
        err = self.query_one("#update-error", Static)
        err.update(Text(f"✗ {message}", style="bold red"))
        err.add_class("-shown")

    def action_save(self) -> None:
        plan = self.plan
        if self.busy or plan is None or not plan.changes:
            if plan is not None and not plan.changes:
                self.dismiss(None)
            return
        self.busy = True
        self.query_one("#update-go", Button).disabled = True
        self._save(plan)

    @work(exit_on_error=False, group="update-save")
    async def _save(self, plan: ProcessingUpdate) -> None:
        try:
            view = await self.engine_await(
                lambda e: e.update_processing(plan.name, expect_hash=plan.definition_hash)
            )
        except EngineError as exc:
            self._failed(str(exc))
            return
        self.dismiss(view)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#update-go")
    def _go(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#update-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)
