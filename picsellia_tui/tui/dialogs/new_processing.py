"""The new-processing modal (`n` in the Processings tab): a private processing from
a folder, from the template, or from an existing image.

`←`/`→` on the tabs pick where it comes from, `tab` moves through the fields,
`enter` (in a field) or `ctrl+s` creates, `esc` cancels. What is wrong is what
the engine says, word for word as the command line prints it, under the field
it names (the dialog has no rules of its own).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static, TabbedContent, TabPane, Tabs

from picsellia_tui.engine.errors import DefinitionError, EngineError, InvalidInput
from picsellia_tui.engine.views import ProcessingView
from picsellia_tui.humanize import first_line
from picsellia_tui.storage.domain import TargetType, Task
from picsellia_tui.tui.widgets.base import EngineAccess
from picsellia_tui.tui.widgets.paths import PathSuggester

MODES = ("folder", "template", "image")
# Where an engine error lands, by the key it names: {mode: {key: field id}}.
FIELDS = {
    "folder": {"folder": "new-folder"},
    "template": {"name": "new-template-name", "folder": "new-template-dest"},
    "image": {
        "name": "new-image-name",
        "image": "new-image-ref",
        "task": "new-image-task",
        "target_type": "new-image-target",
        "command": "new-image-command",
        "entrypoint": "new-image-command",
        "constraints": "new-image-frameworks",
    },
}


class NewProcessingDialog(EngineAccess, ModalScreen[ProcessingView | None]):
    BINDINGS = [
        Binding("ctrl+s", "create", "Create", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, mode: str = "folder", dest: Path | None = None) -> None:
        super().__init__(classes="dialog")
        self.mode = mode if mode in MODES else "folder"
        self.dest = dest if dest is not None else Path.cwd()
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="new-box", classes="dialog-box") as box:
            box.border_title = "New private processing"
            box.border_subtitle = "←→ from · tab fields · enter/ctrl+s create · esc cancel"
            with TabbedContent(initial=f"new-{self.mode}-pane", id="new-modes"):
                with TabPane("a folder", id="new-folder-pane"):
                    yield _intro("A folder holding processing.toml and a Dockerfile.")
                    yield _field(
                        "folder", _text("new-folder", "path (→ completes)", wide=True, paths=True)
                    )
                with TabPane("the template", id="new-template-pane"):
                    yield _intro(
                        "A new folder DEST/NAME from the template (processing.toml, "
                        "Dockerfile, main.py), registered at once: edit main.py, then "
                        "build it (b)."
                    )
                    yield _field(
                        "name",
                        _text("new-template-name"),
                        "lowercase letters, digits, '.', '_' or '-'",
                    )
                    yield _field(
                        "destination",
                        _text(
                            "new-template-dest", value=_shown_path(self.dest), wide=True, paths=True
                        ),
                    )
                with TabPane("an image", id="new-image-pane"):
                    yield _intro(
                        "An image already on the Docker host or in a registry: nothing to build."
                    )
                    yield _field("name", _text("new-image-name"))
                    yield _field("image", _text("new-image-ref", "registry/repo:tag", wide=True))
                    yield _field("task", _choice("new-image-task", Task, Task.MODEL_CONVERSION))
                    yield _field(
                        "target type",
                        _choice("new-image-target", TargetType, TargetType.MODEL_VERSION),
                    )
                    yield _field(
                        "command",
                        _text(
                            "new-image-command",
                            "(optional: empty runs the image's own entrypoint)",
                            wide=True,
                        ),
                    )
                    yield _field(
                        "frameworks",
                        _text("new-image-frameworks", "onnx, openvino (empty: any)"),
                        "accepted, comma-separated",
                    )
            yield Static("", id="new-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create (ctrl+s)", id="new-go", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="new-cancel", compact=True)

    def on_mount(self) -> None:
        # On the tabs: ←→ pick where it comes from, tab goes to its first field.
        self.query_one("#new-modes").query_one(Tabs).focus()

    @on(TabbedContent.TabActivated, "#new-modes")
    def _mode_changed(self, event: TabbedContent.TabActivated) -> None:
        pane = event.pane.id or ""
        self.mode = pane.removeprefix("new-").removesuffix("-pane")
        self._clear_errors()

    # -- values ------------------------------------------------------------------------

    def _value(self, field_id: str) -> str:
        widget = self.query_one(f"#{field_id}")
        if isinstance(widget, Select):
            return "" if widget.value is Select.NULL else str(widget.value)
        assert isinstance(widget, Input)
        return widget.value.strip()

    def request(self) -> dict[str, Any]:
        """The engine's create_processing arguments for what the form says."""
        if self.mode == "folder":
            folder = self._value("new-folder")
            return {"folder": Path(folder).expanduser() if folder else None}
        if self.mode == "template":
            dest = self._value("new-template-dest")
            return {
                "template": self._value("new-template-name"),
                "dest": Path(dest).expanduser() if dest else Path.cwd(),
            }
        from picsellia_tui.engine.catalog import image_definition

        definition = image_definition(
            self._value("new-image-ref"),
            name=self._value("new-image-name") or None,
            task=self._value("new-image-task"),
            target_type=self._value("new-image-target"),
            command=self._value("new-image-command"),
            frameworks=self._value("new-image-frameworks").split(","),
        )
        return {"definition": definition}

    # -- creating ----------------------------------------------------------------------

    def action_create(self) -> None:
        if self.busy:
            return
        self._clear_errors()
        try:
            request = self.request()
        except InvalidInput as exc:
            self._refused(exc.field, str(exc))
            return
        if self.mode == "folder" and request["folder"] is None:
            self._refused("folder", "give the folder holding processing.toml")
            return
        self.busy = True
        self.query_one("#new-go", Button).disabled = True
        self._create(request)

    @work(exit_on_error=False, group="new-processing")
    async def _create(self, request: dict[str, Any]) -> None:
        try:
            view = await self.engine_await(lambda e: e.create_processing(**request))
        except DefinitionError as exc:
            self._refused(exc.key.split(".")[0].split("[")[0], str(exc))
            return
        except InvalidInput as exc:
            self._refused(exc.field, str(exc))
            return
        except (EngineError, OSError, ValueError) as exc:
            self._refused(None, first_line(exc))
            return
        self.dismiss(view)

    def _refused(self, key: str | None, message: str) -> None:
        self.busy = False
        self.query_one("#new-go", Button).disabled = False
        field_id = FIELDS.get(self.mode, {}).get(key or "")
        if field_id is None and self.mode == "folder":
            field_id = "new-folder"  # a folder's processing.toml is what is wrong
        if field_id is not None:
            err = self.query_one(f"#err-{field_id}", Static)
            err.update(Text(f"✗ {message}", style="bold red"))
            err.add_class("-shown")
            self.query_one(f"#{field_id}").focus()
        else:
            self._show_error(message)

    def _show_error(self, message: str | None) -> None:
        err = self.query_one("#new-error", Static)
        err.update(Text(f"✗ {message}", style="bold red") if message else "")
        err.set_class(bool(message), "-shown")

    def _clear_errors(self) -> None:
        for err in self.query(".field-error"):
            if isinstance(err, Static):
                err.update("")
                err.remove_class("-shown")
        self._show_error(None)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_create()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#new-go")
    def _go(self) -> None:
        self.action_create()

    @on(Button.Pressed, "#new-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


def _intro(text: str) -> Static:
    return Static(Text(text, style="dim"), classes="new-intro")


def _text(
    field_id: str,
    placeholder: str = "",
    *,
    value: str = "",
    wide: bool = False,
    paths: bool = False,
) -> Input:
    """A one-line field; `paths`: completes folder paths (→)."""
    return Input(
        value=value,
        placeholder=placeholder,
        suggester=PathSuggester(folders_only=True) if paths else None,
        id=field_id,
        compact=True,
        classes="field-input -wide" if wide else "field-input",
    )


def _choice(field_id: str, values: type[StrEnum], default: StrEnum) -> Select[str]:
    """A pick among an enum's values."""
    return Select(
        [(v.value, v.value) for v in values],
        value=default.value,
        allow_blank=False,
        compact=True,
        id=field_id,
        classes="field-input",
    )


def _field(label: str, widget: Widget, help_text: str = "") -> Vertical:
    field_id = widget.id or ""
    row = [Label(label, classes="field-label"), widget]
    if help_text:  # else the input takes the whole row (paths are long)
        row.append(Static(Text(help_text, style="dim"), classes="field-help"))
    return Vertical(
        Horizontal(*row, classes="field-row"),
        Static("", id=f"err-{field_id}", classes="field-error"),
        classes="field",
    )


def _shown_path(path: Path) -> str:
    """A folder as typed: ~ for the home folder, a trailing slash."""
    text = str(path)
    home = str(Path.home())
    if text == home or text.startswith(home + "/"):
        text = "~" + text[len(home) :]
    return text.rstrip("/") + "/"
