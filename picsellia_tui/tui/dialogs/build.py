"""The build modal (`b` in the Processings tab): pick the Docker host, build the
processing's image there, watch the build log in the same log pane as a run's
(follow, search, save).

`enter` starts the build; while it runs `esc` cancels it (the engine closes the
build's connection, so the daemon stops it) and the modal stays to show how it
ended; once it is over `esc` closes. The modal returns the build as it ended
(None if none was started).
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Select, Static

from picsellia_tui.engine.errors import EngineError
from picsellia_tui.engine.views import BuildView
from picsellia_tui.humanize import first_line
from picsellia_tui.tui.widgets.base import EngineAccess
from picsellia_tui.tui.widgets.log_view import LogView


class BuildDialog(EngineAccess, ModalScreen[BuildView | None]):
    BINDINGS = [
        # Before the Select's own enter (which would open its list): see check_action.
        Binding("enter", "start", "Build", show=False, priority=True),
        Binding("escape", "close", "Cancel build / close"),
    ]

    def __init__(self, name: str, image: str) -> None:
        super().__init__(classes="dialog")
        self.processing = name
        self.image = image
        self.build: BuildView | None = None
        self.starting = False
        self.cancelling = False

    @property
    def running(self) -> bool:
        return self.build is not None and self.build.active

    def compose(self) -> ComposeResult:
        hosts = [h.name for h in self.settings.hosts]
        with Vertical(id="build-box", classes="dialog-box") as box:
            box.border_title = f"Build {self.processing}"
            box.border_subtitle = "enter build · esc cancel the build / close"
            with Horizontal(id="build-head", classes="field-row"):
                yield Label("host", classes="field-label")
                yield Select(
                    [(h, h) for h in hosts],
                    value=self.settings.default_host
                    if self.settings.default_host in hosts
                    else hosts[0],
                    allow_blank=False,
                    compact=True,
                    id="build-host",
                )
                yield Static(Text.assemble(("  image ", "dim"), (self.image, "")))
            yield Static(
                Text("enter builds the image on the host picked above.", style="dim"),
                id="build-status",
            )
            yield LogView(id="build-log", live=False, save_name=f"build-{self.processing}")

    def on_mount(self) -> None:
        self.query_one("#build-host", Select).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start":
            # Once started, or while the host list is open, enter is theirs.
            picking = self.query_one("#build-host", Select).expanded
            return self.build is None and not self.starting and not picking
        return True

    def _status(self, text: Text) -> None:
        self.query_one("#build-status", Static).update(text)

    # -- start -------------------------------------------------------------------------

    def action_start(self) -> None:
        if self.build is not None or self.starting:
            return
        host = self.query_one("#build-host", Select).value
        self.starting = True
        self.query_one("#build-host", Select).disabled = True
        self._status(Text(f"starting the build on {host}…", style="dim"))
        self._start(str(host))

    @work(exit_on_error=False, group="build-start")
    async def _start(self, host: str) -> None:
        name = self.processing
        try:
            build = await self.engine_await(lambda e: e.start_build(name, host=host))
        except (EngineError, OSError, ValueError) as exc:
            self._refused(first_line(exc))
            return
        self._started(build)
        self._ended(await self.engine_await(lambda e: e.wait_build(build.id)))

    def _refused(self, message: str) -> None:
        self.starting = False
        self.query_one("#build-host", Select).disabled = False
        self._status(Text(f"✗ {message}", style="bold red"))

    def _started(self, build: BuildView) -> None:
        self.build = build
        self.starting = False
        log = self.query_one(LogView)
        log.set_source(Path(build.log_path))
        log.live = True
        log.focus()
        self._status(
            Text.assemble(
                (f"building {build.image} on {build.host}…", "bold"),
                ("  esc cancels the build", "dim"),
            )
        )

    def _ended(self, build: BuildView) -> None:
        self.build = build
        log = self.query_one(LogView)
        log.refresh_source()
        log.live = False
        if build.status == "succeeded":
            text = Text.assemble(
                ("✓ built ", "bold green"),
                (f"{build.image} ({(build.image_id or '')[:19]})", ""),
                ("  esc closes", "dim"),
            )
        elif build.status == "cancelled":
            text = Text.assemble(("✗ build cancelled", "bold yellow"), ("  esc closes", "dim"))
        else:
            text = Text.assemble(
                ("✗ build failed: ", "bold red"), (build.error or "", ""), ("  esc closes", "dim")
            )
        self._status(text)

    # -- cancel / close ----------------------------------------------------------------

    def action_close(self) -> None:
        if self.running:
            if not self.cancelling:
                self.cancelling = True
                self._status(Text("cancelling the build…", style="bold yellow"))
                assert self.build is not None
                self._cancel(self.build.id)
            return
        if self.starting:
            return  # its answer is on the way: esc again cancels it
        self.dismiss(self.build)

    @work(exit_on_error=False, group="build-cancel")
    async def _cancel(self, build_id: int) -> None:
        try:
            await self.engine_await(lambda e: e.cancel_build(build_id))
        except EngineError:
            pass  # it ended meanwhile: _ended tells how
