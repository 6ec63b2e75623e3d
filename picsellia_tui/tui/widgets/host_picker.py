"""Where a launch runs: a row of the launch dialog with every configured host (local,
`ssh://`, `tcp://`, Swarm), the default preselected, each with its kind.

Kept out of the dialog's module: the dialog only composes it and reads `host`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, Select, Static

from picsellia_tui.tui.widgets.base import EngineAccess

if TYPE_CHECKING:
    from picsellia_tui.engine.hostconfig import HostConfig


def host_label(host: HostConfig, default: bool) -> str:
    """`cluster (swarm)`, `gpu-box (docker, default)`: what the list shows."""
    bits: list[str] = [host.kind]
    if default:
        bits.append("default")
    return f"{host.name} ({', '.join(bits)})"


def host_where(host: HostConfig) -> str:
    """The line beside the list: how the chosen host is reached and what a run is there."""
    where = "this machine's Docker" if host.url == "local" else host.url
    if host.kind == "swarm":
        return f"{where} · Swarm picks the node"
    return where


class HostPicker(Horizontal, EngineAccess):
    """`host` is the name picked (None under the process executor: runs are local
    subprocesses, hosts do not apply)."""

    DEFAULT_CSS = """
    HostPicker {
        height: auto;
        margin-top: 1;
    }
    HostPicker #launch-host {
        width: 32;
    }
    HostPicker #launch-host-where {
        width: 1fr;
        height: auto;
        padding-left: 1;
        color: $text-muted;
    }
    """

    def __init__(self, initial: str | None = None, label_width: int = 14) -> None:
        super().__init__(id="launch-host-row", classes="field-row")
        self.initial = initial
        self.label_width = label_width

    def compose(self) -> ComposeResult:
        label = Label("host", classes="field-label")
        label.styles.width = self.label_width
        yield label
        settings = self.settings
        if settings.executor != "docker":
            yield Static(
                Text("this machine: the process executor runs it as a local process", "dim"),
                id="launch-host-where",
            )
            return
        hosts = {h.name: h for h in settings.hosts}
        default = settings.default_host
        chosen = self.initial if self.initial in hosts else default
        if chosen not in hosts:
            chosen = next(iter(hosts))
        yield Select(
            [(host_label(h, h.name == default), h.name) for h in hosts.values()],
            value=chosen,
            allow_blank=False,
            compact=True,
            # One host: nothing to choose, and no stop for tab on the way to the buttons.
            disabled=len(hosts) < 2,
            id="launch-host",
        )
        yield Static(Text(host_where(hosts[chosen])), id="launch-host-where")

    def align_label(self, width: int) -> None:
        """The form's label column (widened for long parameter names)."""
        self.query_one(".field-label", Label).styles.width = width

    @on(Select.Changed, "#launch-host")
    def _changed(self, event: Select.Changed) -> None:
        event.stop()
        for h in self.settings.hosts:
            if h.name == event.value:
                self.query_one("#launch-host-where", Static).update(Text(host_where(h)))

    @property
    def host(self) -> str | None:
        if self.settings.executor != "docker":
            return None
        value = self.query_one("#launch-host", Select).value
        return None if value is Select.NULL else str(value)
