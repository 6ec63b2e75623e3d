"""`doctor`: what works and what does not, each as one line with a fix."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from picsellia_tui.engine.config import Settings
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
            add(
                Check(
                    f"host {host.name}",
                    False,
                    f"{host.url}: {r.error}",
                    "start dockerd, or fix the host's url / ssh access",
                )
            )
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
