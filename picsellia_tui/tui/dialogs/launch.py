"""The launch modal: pick the other side (only compatible choices can be picked),
fill a form typed from the processing's parameter specs, name the new version.

`enter` (in a field) or `ctrl+s` launches, `esc` cancels. `enter` on the picker,
`tab` and `shift+tab` move the focus in the key's own dispatch (priority bindings):
a focus change made later by a widget's message would let the next keys, typed or
queued meanwhile on a busy machine, reach the widget that had the focus before.
Values are checked as
they are typed with the rule the engine applies to a launch (`resolve_value`), the
new version's name is suggested by the engine (`suggest_version_name`), and an
`InvalidInput` from the engine lands under the field it names.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rich.text import Text
from textual import on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.validation import ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import Button, Input, Label, OptionList, Select, Static, Switch
from textual.widgets.option_list import Option

from picsellia_tui.engine.errors import EngineError, InvalidInput
from picsellia_tui.engine.views import JobView, ProcessingView, VersionView
from picsellia_tui.storage.domain import VERSION_NAME_RE, VERSION_NAME_RULE, ParamSpec
from picsellia_tui.storage.params import MASK, ParameterError, resolve_value
from picsellia_tui.tui.messages import LaunchRequest
from picsellia_tui.tui.widgets.base import EngineAccess
from picsellia_tui.tui.widgets.format import num
from picsellia_tui.tui.widgets.host_picker import HostPicker

LABEL_WIDTH = 14  # the labels' column, widened to the form's longest parameter name
LABEL_MAX = 32


def label_width(names: list[str]) -> int:
    """A label column wide enough for every name of the form (a name is never
    wrapped mid-word), up to LABEL_MAX cells."""
    return max(LABEL_WIDTH, min(LABEL_MAX, max((len(n) + 1 for n in names), default=0)))


def typed(spec: ParamSpec, text: str) -> str | None:
    """What a text field gives the engine: None (left to the default) when empty, or
    blank for a field that is not a string."""
    if text == "" or (spec.type != "str" and text.strip() == ""):
        return None
    return text


class ParamValidator(Validator):
    """The engine's rule for a parameter, as the user types."""

    def __init__(self, spec: ParamSpec) -> None:
        super().__init__()
        self.spec = spec

    def validate(self, value: str) -> ValidationResult:
        try:
            resolve_value(self.spec, typed(self.spec, value))
        except ParameterError as exc:
            return self.failure(exc.reason)
        return self.success()


def version_name_problem(name: str) -> str | None:
    return None if not name or VERSION_NAME_RE.match(name) else f"use {VERSION_NAME_RULE}"


class VersionNameValidator(Validator):
    def validate(self, value: str) -> ValidationResult:
        problem = version_name_problem(value.strip())
        return self.failure(problem) if problem else self.success()


class FormSwitch(Switch, inherit_bindings=False):
    """A Switch toggled by space only: enter launches, as everywhere in the form."""

    BINDINGS = [Binding("space", "toggle_switch", "Toggle", show=False)]


def describe(spec: ParamSpec) -> str:
    bits: list[str] = [spec.type]
    if spec.min is not None or spec.max is not None:
        bits.append(f"{num(spec.min)}..{num(spec.max)}")
    if spec.secret:
        bits.append("secret")
    if spec.required:
        bits.append("required")
    return " ".join(bits)


class ParamField(Vertical):
    """One parameter: label, typed input, help, inline error."""

    def __init__(
        self, spec: ParamSpec, initial: Any = None, note: str = "", label_width: int = LABEL_WIDTH
    ) -> None:
        super().__init__(id=f"field-{spec.name}", classes="field")
        self.spec = spec
        self.initial = spec.default if initial is None else initial
        self.note = note
        self.label_width = label_width

    def compose(self) -> ComposeResult:
        spec = self.spec
        with Horizontal(classes="field-row"):
            yield _label(spec.name, self.label_width)
            yield self._widget()
            if spec.type == "bool":
                # The switch is drawn with colours only: say its state in words too.
                yield Static(_on_off(bool(self.initial)), classes="switch-state")
            help_text = Text.assemble((describe(spec), "dim"))
            if spec.help:
                help_text.append(f" · {spec.help}")
            if self.note:
                help_text.append(f" · {self.note}", style="italic")
            yield Static(help_text, classes="field-help")
        yield _error(f"err-{spec.name}", self.label_width)

    def _widget(self) -> Widget:
        spec, wid = self.spec, f"param-{self.spec.name}"
        if spec.type == "bool":
            return FormSwitch(value=bool(self.initial), id=wid, classes="field-input")
        if spec.type == "choice":
            assert spec.choices is not None
            value = self.initial if self.initial in spec.choices else None
            blank = value is None and not spec.required
            if value is None and not blank:
                value = spec.choices[0]
            return Select(
                [(c, c) for c in spec.choices],
                value=value if value is not None else Select.NULL,
                allow_blank=blank,
                compact=True,
                id=wid,
                classes="field-input",
            )
        initial = "" if self.initial is None or self.initial == MASK else str(self.initial)
        return Input(
            value=initial,
            password=spec.secret,
            validators=[ParamValidator(spec)],
            compact=True,
            id=wid,
            classes="field-input",
            placeholder="(empty: not set)" if spec.type == "str" else "",
        )

    @on(Switch.Changed)
    def _switched(self, event: Switch.Changed) -> None:
        self.query_one(".switch-state", Static).update(_on_off(event.value))

    @property
    def input(self) -> Widget:
        return self.query_one(f"#param-{self.spec.name}")

    def value(self) -> Any:
        """The value as the engine takes it (None: left unset); ParameterError if bad."""
        widget = self.input
        raw: Any
        if isinstance(widget, Switch):
            raw = widget.value
        elif isinstance(widget, Select):
            raw = None if widget.value is Select.NULL else widget.value
        else:
            assert isinstance(widget, Input)
            raw = typed(self.spec, widget.value)
        return resolve_value(self.spec, raw)

    def set_error(self, message: str | None) -> None:
        err = self.query_one(f"#err-{self.spec.name}", Static)
        err.update(Text(f"✗ {message}", style="bold red") if message else "")
        err.set_class(bool(message), "-shown")
        self.set_class(bool(message), "-invalid")


class VersionNameField(Vertical):
    """The new ModelVersion's name: prefilled, checked for uniqueness as typed."""

    def __init__(self, value: str, label_width: int = LABEL_WIDTH) -> None:
        super().__init__(id="field-version_name", classes="field")
        self.value = value
        self.label_width = label_width

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-row"):
            yield _label("new version", self.label_width)
            yield Input(
                value=self.value,
                id="version-name",
                compact=True,
                validators=[VersionNameValidator()],
                classes="field-input",
            )
            yield Static(
                Text("name of the ModelVersion it creates (checked for uniqueness)", style="dim"),
                classes="field-help",
            )
        yield _error("err-version_name", self.label_width)


class LaunchDialog(EngineAccess, ModalScreen[JobView | None]):
    BINDINGS = [
        Binding("ctrl+s", "launch", "Launch", priority=True),
        Binding("enter", "launch", "Launch"),
        Binding("enter", "enter_form", show=False, priority=True),
        Binding("tab", "focus_step(1)", show=False, priority=True),
        Binding("shift+tab", "focus_step(-1)", show=False, priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, request: LaunchRequest) -> None:
        super().__init__(classes="dialog")
        self.request = request
        self.params = dict(request.params)
        self.given_name = request.output_version_name
        self.title_text = request.title
        self.proc: ProcessingView | None = request.processing
        self.version: VersionView | None = request.version
        self.pick: str | None = None  # "version" or "processing": the side picked here
        self.choices: list[tuple[Any, str | None]] = []
        self.taken: set[str] = set()
        self.name_edited = False
        self.busy = False
        self._name_timer: Timer | None = None
        self._form_for: str | None = None
        self._form_lock = asyncio.Lock()
        self._prefilling = False

    def compose(self) -> ComposeResult:
        with Vertical(id="launch-box", classes="dialog-box") as box:
            box.border_title = self.title_text or "Launch"
            box.border_subtitle = "enter/ctrl+s launch · esc cancel"
            yield Static(Text("loading…", style="dim"), id="launch-target")
            yield Static("", id="launch-pick-label", classes="-hidden")
            yield OptionList(id="launch-pick", classes="-hidden")
            with VerticalScroll(id="launch-form"):
                yield Static("", id="launch-form-empty")
            yield HostPicker(self.request.host)
            yield Static("", id="launch-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Launch (ctrl+s)", id="launch-go", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="launch-cancel", compact=True)

    def on_mount(self) -> None:
        self.load()

    # -- loading the two sides -----------------------------------------------------------

    @work(exit_on_error=False, group="launch-load")
    async def load(self) -> None:
        """The other side's choices (the views given are used as they are)."""
        proc, version = self.proc, self.version
        choices: list[tuple[Any, str | None]] = []
        try:
            if proc is not None and version is None:
                choices = await self.engine_await(lambda e: e.compatible_versions(proc.id))
            elif version is not None and proc is None:
                choices = await self.engine_await(lambda e: e.compatible_processings(version.id))
        except EngineError as exc:
            self._show_error(str(exc))
            return
        await self._loaded(choices)

    async def _loaded(self, choices: list[tuple[Any, str | None]]) -> None:
        proc, version = self.proc, self.version
        if proc is not None and version is None:
            self.pick = "version"
        elif version is not None and proc is None:
            self.pick = "processing"
        # Compatible first, in their order; the others after, disabled with the reason.
        self.choices = [c for c in choices if c[1] is None] + [c for c in choices if c[1]]
        box = self.query_one("#launch-box")
        if self.title_text is None:
            box.border_title = (
                f"Launch {proc.name}"
                if proc is not None and self.pick
                else f"Launch on {version.ref}"
                if version is not None
                else "Launch"
            )
        picker = self.query_one("#launch-pick", OptionList)
        if self.pick:
            label = self.query_one("#launch-pick-label", Static)
            label.update(
                Text.assemble(
                    (f"{self.pick}: ", "bold"),
                    ("only compatible ones can be picked (↑↓, enter goes to the form)", "dim"),
                )
            )
            label.remove_class("-hidden")
            picker.remove_class("-hidden")
            picker.clear_options()
            for view, reason in self.choices:
                picker.add_option(self._option(view, reason))
            enabled = [i for i, (_, r) in enumerate(self.choices) if r is None]
            if enabled:
                picker.highlighted = enabled[0]
                picker.focus()
                await self._choose(self.choices[enabled[0]][0])
            else:
                other = "model version" if self.pick == "version" else "processing"
                self._show_target()
                await self._build_form()
                self._show_error(f"No compatible {other}: nothing can be launched from here.")
        else:
            self._show_target()
            await self._build_form()

    def _option(self, view: Any, reason: str | None) -> Option:
        if isinstance(view, VersionView):
            label = Text.assemble((view.ref, "bold"), (f"  {view.framework}", "dim"))
        else:
            label = Text.assemble(
                (f"{view.visibility:<8}", "bold" if view.visibility == "private" else "dim"),
                (view.name, "bold"),
                (f"  {view.task}", "dim"),
            )
        if reason:
            label = Text.assemble((label.plain, "dim strike"), (f"  — {reason}", "dim italic"))
        return Option(label, id=str(view.id), disabled=reason is not None)

    @on(OptionList.OptionHighlighted, "#launch-pick")
    async def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        index = event.option_index
        if 0 <= index < len(self.choices) and self.choices[index][1] is None:
            await self._choose(self.choices[index][0])

    @on(OptionList.OptionSelected, "#launch-pick")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()  # a click on a choice: into its form
        self._focus_first_field()

    def action_enter_form(self) -> None:
        """`enter` on the picker goes into the form now, before the next key is routed."""
        if self.focused is not self.query_one("#launch-pick", OptionList):
            raise SkipAction()
        if not self._focus_first_field():
            raise SkipAction()

    def action_focus_step(self, step: int) -> None:
        focused = self.focused
        if isinstance(focused, OptionList) and focused.id != "launch-pick":
            raise SkipAction()  # an open Select's list keeps its own keys
        if step > 0:
            self.focus_next()
        else:
            self.focus_previous()

    def _focus_first_field(self) -> bool:
        first = next(iter(self.query(".field-input")), None)
        if first is None:
            return False
        self.set_focus(first)
        return True

    async def _choose(self, view: Any) -> None:
        if isinstance(view, VersionView):
            self.version = view
        else:
            self.proc = view
        self._show_target()
        await self._build_form()

    def _show_target(self) -> None:
        p, v = self.proc, self.version
        text = Text()
        if p is not None:
            text.append(p.name, style="bold")
            text.append(f" {p.version}", style="dim")
        else:
            text.append("pick a processing ↓", style="italic")
        text.append("  on  ", style="dim")
        if v is not None:
            text.append(v.ref, style="bold")
            text.append(f" ({v.framework})", style="dim")
        else:
            text.append("pick a version ↓", style="italic")
        if p is not None:
            text.append(f"\n{p.task} → {p.output_mode}", style="dim")
        self.query_one("#launch-target", Static).update(text)

    # -- the form ------------------------------------------------------------------------

    async def _build_form(self) -> None:
        # Highlights come fast (a held arrow key, `end`): one rebuild at a time, each
        # for the processing current when it starts; the last one wins.
        async with self._form_lock:
            p = self.proc
            if p is None:
                return
            if self._form_for == p.name:
                self._prefill_name()
                return
            self._form_for = p.name
            form = self.query_one("#launch-form", VerticalScroll)
            await form.remove_children()
            widgets: list[Widget] = []
            width = label_width([spec.name for spec in p.parameters])
            self.query_one(HostPicker).align_label(width)
            if p.parameters:
                widgets.append(Static(Text("parameters", style="bold"), classes="form-title"))
            for spec in p.parameters:
                note = ""
                if spec.secret and spec.name not in self.params and self.title_text:
                    note = "secrets are not kept: enter it again if needed"
                widgets.append(ParamField(spec, self.params.get(spec.name), note, width))
            if not p.parameters:
                widgets.append(Static(Text("This processing takes no parameters.", style="dim")))
            if p.output_mode == "new_model_version":
                widgets.append(VersionNameField(self.given_name or "", width))
            else:
                what = (
                    "updates the input version in place"
                    if p.output_mode == "update_input"
                    else "the processing creates its versions through the Picsellia API"
                    if p.picsellia_api
                    else "creates no model version"
                )
                widgets.append(Static(Text(f"output: {what}", style="dim"), classes="form-title"))
            await form.mount_all(widgets)
            self._prefill_name()

    def fields(self) -> list[ParamField]:
        return list(self.query(ParamField))

    def field_error(self, name: str, message: str | None) -> bool:
        if name == "version_name":
            try:
                err = self.query_one("#err-version_name", Static)
            except NoMatches:  # the processing writes no new version
                return False
            err.update(Text(f"✗ {message}", style="bold red") if message else "")
            err.set_class(bool(message), "-shown")
            return True
        for f in self.fields():
            if f.spec.name == name:
                f.set_error(message)
                return True
        return False

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "version-name":
            if not self._prefilling:
                self.name_edited = True
            result = event.validation_result
            if result is not None and not result.is_valid:
                self.field_error("version_name", result.failure_descriptions[0])
            else:
                self.field_error("version_name", None)
                self._schedule_name_check()
            return
        if event.input.id and event.input.id.startswith("param-"):
            name = event.input.id.removeprefix("param-")
            result = event.validation_result
            ok = result is None or result.is_valid
            self.field_error(name, None if ok else _reason(result))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_launch()

    # -- the new version's name ----------------------------------------------------------

    def _prefill_name(self) -> None:
        if self.version is None or self.proc is None:
            return
        try:
            box = self.query_one("#version-name", Input)
        except NoMatches:  # the processing writes no new version
            return
        if self.name_edited and box.value:
            self._schedule_name_check()
            return
        self._suggest(self.version, self.proc.name)

    @work(exit_on_error=False, exclusive=True, group="launch-name")
    async def _suggest(self, version: VersionView, processing: str) -> None:
        base = self.given_name
        name = await self.engine_await(
            lambda e: e.suggest_version_name(version.ref, processing, base)
        )
        if self.version is None or self.version.id != version.id:
            return
        try:
            box = self.query_one("#version-name", Input)
        except NoMatches:  # another processing's form, without a new version
            return
        if self.name_edited and box.value:
            return
        self._prefilling = True
        box.value = name
        self.call_after_refresh(self._end_prefill)

    def _end_prefill(self) -> None:
        self._prefilling = False

    def _schedule_name_check(self) -> None:
        if self._name_timer is not None:
            self._name_timer.stop()
        self._name_timer = self.set_timer(0.3, self._check_name)

    def _check_name(self) -> None:
        if self.version is None:
            return
        try:
            name = self.query_one("#version-name", Input).value.strip()
        except NoMatches:
            return
        if name:
            self._name_free(self.version.model, name)

    @work(exit_on_error=False, exclusive=True, group="launch-name-check")
    async def _name_free(self, model: str, name: str) -> None:
        free = await self.engine_await(lambda e: e.version_name_free(model, name))
        if free:
            self.taken.discard(name)
        else:
            self.taken.add(name)
        try:
            current = self.query_one("#version-name", Input).value.strip()
        except NoMatches:
            return
        if current == name:
            self.field_error(
                "version_name", None if free else f"model {model!r} already has a version {name!r}"
            )

    # -- launching -----------------------------------------------------------------------

    def _show_error(self, message: str | None) -> None:
        err = self.query_one("#launch-error", Static)
        err.update(Text(f"✗ {message}", style="bold red") if message else "")
        err.set_class(bool(message), "-shown")

    def collect(self) -> tuple[dict[str, Any], str | None, dict[str, str]]:
        """(parameters, new version name, errors by field)."""
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for f in self.fields():
            try:
                value = f.value()
            except ParameterError as exc:
                errors[f.spec.name] = exc.reason
                continue
            if value is not None:
                values[f.spec.name] = value
        name: str | None = None
        try:
            name = self.query_one("#version-name", Input).value.strip() or None
        except NoMatches:  # the processing writes no new version
            name = None
        if name is not None:
            problem = version_name_problem(name)
            if problem:
                errors["version_name"] = problem
            elif name in self.taken and self.version is not None:
                errors["version_name"] = (
                    f"model {self.version.model!r} already has a version {name!r}"
                )
        return values, name, errors

    def action_launch(self) -> None:
        if self.busy:
            return
        if self.proc is None or self.version is None:
            self._show_error("Pick what to launch first.")
            return
        values, name, errors = self.collect()
        for f in self.fields():
            f.set_error(errors.get(f.spec.name))
        self.field_error("version_name", errors.get("version_name"))
        if errors:
            self._show_error(
                f"{len(errors)} field{'s' if len(errors) > 1 else ''} to fix: {', '.join(errors)}"
            )
            self._focus_field(next(iter(errors)))
            return
        self._show_error(None)
        self.busy = True
        self.query_one("#launch-go", Button).disabled = True
        host = self.query_one(HostPicker).host
        self._launch(self.proc.name, self.version.ref, values, name, host)

    def _focus_field(self, name: str) -> None:
        target = "#version-name" if name == "version_name" else f"#param-{name}"
        try:
            widget = self.query_one(target)
        except NoMatches:
            return
        widget.focus()
        widget.scroll_visible()

    @work(exit_on_error=False, group="launch-go")
    async def _launch(
        self,
        processing: str,
        ref: str,
        values: dict[str, Any],
        name: str | None,
        host: str | None,
    ) -> None:
        try:
            job = await self.engine_await(
                lambda e: e.launch(processing, ref, values, output_version_name=name, host=host)
            )
        except InvalidInput as exc:
            self._refused(exc.field, str(exc))
            return
        except EngineError as exc:
            self._refused(None, str(exc))
            return
        self.dismiss(job)

    def _refused(self, field: str | None, message: str) -> None:
        self.busy = False
        self.query_one("#launch-go", Button).disabled = False
        short = message
        if field and message.startswith(f"parameter {field!r}: "):
            short = message.removeprefix(f"parameter {field!r}: ")
        if field and self.field_error(field, short):
            self._show_error(f"The engine refused it: {message}")
            self._focus_field(field)
        else:
            self._show_error(message)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#launch-go")
    def _go(self) -> None:
        self.action_launch()

    @on(Button.Pressed, "#launch-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


def _label(text: str, width: int) -> Label:
    label = Label(text, classes="field-label")
    label.styles.width = width
    return label


def _error(id: str, indent: int) -> Static:
    error = Static("", id=id, classes="field-error")
    error.styles.padding = (0, 0, 0, indent)
    return error


def _on_off(value: bool) -> Text:
    return Text("on " if value else "off", style="bold" if value else "dim")


def _reason(result: ValidationResult | None) -> str:
    if result is None or not result.failure_descriptions:
        return "invalid value"
    return result.failure_descriptions[0]
