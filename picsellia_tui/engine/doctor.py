"""`doctor`: what works and what does not, each as one line with a fix."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from picsellia_tui.engine.config import Settings
from picsellia_tui.engine.hostconfig import HostConfig
from picsellia_tui.humanize import first_line


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def diagnose(settings: Settings) -> Report:
    from picsellia_tui.engine.definitions import bundled_folders, load_definition
    from picsellia_tui.engine.errors import DefinitionError
    from picsellia_tui.engine.workspace import Workspace
    from picsellia_tui.storage.migrate import current_revision, head_revision

    report = Report()
    add = report.checks.append
    add(
        Check(
            "config",
            True,
            f"executor {settings.executor}, organization "
            f"{settings.organization!r}, user {settings.user!r}",
        )
    )
    try:
        ws = Workspace(settings)
    except Exception as exc:
        add(
            Check(
                "database",
                False,
                first_line(exc),
                "check data_dir / database in the config and the folder's permissions",
            )
        )
        return report
    try:
        rev, head = current_revision(ws.db), head_revision(ws.db)
        mode = stat.S_IMODE(os.stat(ws.db.path).st_mode)
        dmode = stat.S_IMODE(os.stat(ws.root).st_mode)
        add(
            Check(
                "database",
                rev == head and mode == 0o600 and dmode == 0o700,
                f"{ws.db.path} at revision {rev} (head {head}), file {mode:o}, data dir {dmode:o}",
                None if mode == 0o600 else f"chmod 600 {ws.db.path}; chmod 700 {ws.root}",
            )
        )
    finally:
        ws.close()

    folders = bundled_folders(settings.processings_dir)
    defs = []
    for folder in folders:
        try:
            defs.append(load_definition(folder))
        except DefinitionError as exc:
            add(Check("processing", False, str(exc), "fix the processing.toml named"))
    add(
        Check(
            "processings",
            bool(defs),
            f"{len(defs)} public processing(s) in {settings.processings_dir}",
        )
    )

    if settings.executor != "docker":
        return report
    from picsellia_tui.engine.hosts import connect, probe
    from picsellia_tui.engine.images import image_present

    for host in settings.hosts:
        r = probe(host)
        if not r.reachable:
            error = r.error or "unreachable"
            # Connection errors name the url already; a daemon's answer may not.
            said = error if host.url in error else f"{host.url}: {error}"
            add(Check(f"host {host.name}", False, said, _unreachable_hint(host)))
            continue
        gpu = "nvidia runtime" if r.gpu_runtime else "no GPU runtime"
        add(
            Check(
                f"host {host.name}",
                True,
                f"{host.url}: Docker {r.server_version} "
                f"(API {r.api_version}), {r.os} {r.arch}, {gpu}",
            )
        )
        client = connect(host, timeout=10)
        try:
            if host.kind == "swarm":
                _swarm_checks(host, client, defs, add)
            missing = [d for d in defs if not image_present(client, d.image)]
        finally:
            client.close()
        present = len(defs) - len(missing)
        add(
            Check(
                f"images on {host.name}",
                not missing,
                f"{present}/{len(defs)} processing images present"
                + (f"; missing: {', '.join(d.name for d in missing)}" if missing else ""),
                f"picsellia-tui processings build --all --host {host.name}" if missing else None,
            )
        )
    return report


def _unreachable_hint(host: HostConfig) -> str:
    if host.is_remote:
        return (
            f"check that {host.name} is up and reachable from here "
            f"(connect_timeout = {host.connect_timeout:g} s), its url and your ssh/TLS access"
        )
    return "start dockerd, or fix the host's url"


def _swarm_checks(host: Any, client: Any, defs: list[Any], add: Callable[[Check], None]) -> None:
    """A swarm host: the manager, each node, and where the images are."""
    from picsellia_tui.engine.swarm_nodes import list_nodes, manager_problem

    info = client.info()
    problem = manager_problem(info)
    if problem is not None:
        add(Check(f"swarm {host.name}", False, problem, "docker swarm init on the manager"))
        return
    nodes = list_nodes(client.api, str((info.get("Swarm") or {}).get("NodeID") or ""))
    usable = [n for n in nodes if n.state == "ready" and n.availability == "active"]
    add(
        Check(
            f"swarm {host.name}",
            bool(usable),
            f"{len(nodes)} node(s), {len(usable)} ready and active; tasks reach the "
            f"engine at {host.api_url}",
            None if usable else "docker node update --availability active NODE",
        )
    )
    for n in nodes:
        if n.local:
            here = [d.name for d in defs if _present(client, d.image)]
            images = f"; images here: {len(here)}/{len(defs)}"
        else:
            # Only the manager's own daemon is visible from here: another node's
            # images are not; a registry reference lets each node pull it.
            images = "; images: not visible from the manager (push them to a registry)"
        add(
            Check(
                f"node {n.hostname}",
                n.state == "ready",
                n.line() + images,
                None if n.state == "ready" else "start that node's dockerd or remove it",
            )
        )


def _present(client: Any, image: str) -> bool:
    from picsellia_tui.engine.images import image_present

    return bool(image_present(client, image))
