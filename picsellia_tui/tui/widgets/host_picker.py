"""Where a launch runs: a row of the launch dialog with every configured host (local,
`ssh://`, `tcp://`, Swarm), the default preselected, each with its kind.

Kept out of the dialog's module: the dialog only composes it and reads `host`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, Select, Static

from picsellia_tui.tui.widgets.base import EngineAccess

if TYPE_CHECKING:
    from picsellia_tui.engine.hostconfig import HostConfig


def host_label(host: HostConfig, default: bool, nodes: int | None = None) -> str:
    """`cluster (swarm, 3 nodes)`, `gpu-box (docker, default)`: what the list shows
    (a swarm's node count once its manager answered)."""
    bits: list[str] = [host.kind]
    if nodes is not None:
        bits.append(f"{nodes} node{'' if nodes == 1 else 's'}")
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
        self.nodes: dict[str, int] = {}  # swarm host -> node count, as its manager said
        self._shown: dict[str, int] = {}  # the counts the list shows

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

    def on_mount(self) -> None:
        if self.settings.executor != "docker":
            return
        for h in self.settings.hosts:
            if h.kind == "swarm":
                self._count_nodes(h.name)

    @work(exit_on_error=False, group="host-nodes")
    async def _count_nodes(self, name: str) -> None:
        """Asked after the dialog is up: a manager over ssh may take seconds (or
        not answer: its label then keeps the kind alone)."""
        count = await self.engine_await(lambda e: e.swarm_node_count(name))
        if count is None:
            return
        self.nodes[name] = count
        self._relabel()

    def _relabel(self) -> None:
        select = self.query_one("#launch-host", Select)
        if select.expanded or self._shown == self.nodes:
            return  # not under the user's keys (again once it closes), or done
        self._shown = dict(self.nodes)
        default = self.settings.default_host
        value = select.value
        select.set_options(
            [
                (host_label(h, h.name == default, self.nodes.get(h.name)), h.name)
                for h in self.settings.hosts
            ]
        )
        if value is not Select.NULL:
            select.value = value

    def align_label(self, width: int) -> None:
        """The form's label column (widened for long parameter names)."""
        self.query_one(".field-label", Label).styles.width = width

    @on(Select.Changed, "#launch-host")
    def _changed(self, event: Select.Changed) -> None:
        event.stop()
        if self.nodes != self._shown:
            self.call_after_refresh(self._relabel)  # a count that came while it was open
        for h in self.settings.hosts:
            if h.name == event.value:
                self.query_one("#launch-host-where", Static).update(Text(host_where(h)))

    @property
    def host(self) -> str | None:
        if self.settings.executor != "docker":
            return None
        value = self.query_one("#launch-host", Select).value
        return None if value is Select.NULL else str(value)
