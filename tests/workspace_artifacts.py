"""Docker artifacts of test workspaces: find them, remove them.

An engine labels what it makes on a Docker host with its workspace id
(`picsellia-tui.workspace=<id>`: run containers today; images, networks and volumes
carry the same label when a feature makes them). A test workspace is a data dir under
pytest's temp dir; its id is in its database (`meta.workspace_id`), so the ids of a
test, or of a whole session, are found on disk, engines in subprocesses included.

tests/conftest.py removes them after every test and fails the session if any are
left at its end.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKSPACE_LABEL = "picsellia-tui.workspace"
DB_NAME = "picsellia.db"  # Settings.database_path's default name


def workspace_ids_under(root: Path) -> set[str]:
    """The workspace ids of every workspace database below `root`."""
    ids: set[str] = set()
    if not root.is_dir():
        return ids
    for db in root.rglob(DB_NAME):
        if not db.is_file():  # a test's folder or special file in the way
            continue
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
            try:
                row = con.execute("SELECT value FROM meta WHERE key = 'workspace_id'").fetchone()
            finally:
                con.close()
        except sqlite3.Error:
            continue  # not migrated yet, or a test's deliberately broken database
        if row and row[0]:
            ids.add(str(row[0]))
    return ids


@dataclass(frozen=True)
class Artifact:
    kind: str  # service, container, network, image, volume
    ref: str  # what the API removes it by: id (name for a volume)
    name: str
    workspace: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name} (workspace {self.workspace[:12]})"


def _workspace(labels: dict[str, str] | None) -> str:
    return (labels or {}).get(WORKSPACE_LABEL, "")


def _services(api: Any, only: dict[str, str]) -> list[dict[str, Any]]:
    """The Swarm services (none when the daemon is not a Swarm manager)."""
    import docker.errors

    try:
        return list(api.services(filters=only))
    except docker.errors.APIError:
        return []


def workspace_artifacts(client: Any, ids: set[str]) -> list[Artifact]:
    """What the Docker host holds for these workspaces: Swarm services (a run on a
    cluster), containers (any state), networks, images and volumes labelled with one
    of the ids."""
    if not ids:
        return []
    api = client.api
    only = {"label": WORKSPACE_LABEL}  # one list call per kind, filtered by id here
    found: list[Artifact] = []
    for svc in _services(api, only):
        spec = svc.get("Spec") or {}
        if (ws := _workspace(spec.get("Labels"))) in ids:
            found.append(Artifact("service", svc["ID"], spec.get("Name", svc["ID"][:12]), ws))
    for c in api.containers(all=True, filters=only):
        if (ws := _workspace(c.get("Labels"))) in ids:
            name = (c.get("Names") or [c["Id"][:12]])[0].lstrip("/")
            found.append(Artifact("container", c["Id"], f"{name} ({c.get('Status')})", ws))
    for n in api.networks(filters=only):
        if (ws := _workspace(n.get("Labels"))) in ids:
            found.append(Artifact("network", n["Id"], n.get("Name", n["Id"][:12]), ws))
    for i in api.images(all=True, filters=only):
        if (ws := _workspace(i.get("Labels"))) in ids:
            tags = [t for t in i.get("RepoTags") or [] if t != "<none>:<none>"]
            found.append(Artifact("image", i["Id"], (tags or [i["Id"][7:19]])[0], ws))
    for v in api.volumes(filters=only).get("Volumes") or []:
        if (ws := _workspace(v.get("Labels"))) in ids:
            found.append(Artifact("volume", v["Name"], v["Name"], ws))
    return found


def remove_artifacts(client: Any, artifacts: list[Artifact]) -> None:
    """Remove them, services first (a service would start its task's container
    again), then containers (a network, image or volume in use by one cannot go
    before it). What is already gone is fine."""
    import docker.errors

    api = client.api
    remove = {
        "service": api.remove_service,
        "container": lambda ref: api.remove_container(ref, force=True, v=True),
        "network": api.remove_network,
        "image": lambda ref: api.remove_image(ref, force=True),
        "volume": lambda ref: api.remove_volume(ref, force=True),
    }
    order = list(remove)
    for a in sorted(artifacts, key=lambda a: order.index(a.kind)):
        if a.kind == "network":
            _remove_network(api, a)
            continue
        with contextlib.suppress(docker.errors.NotFound):
            remove[a.kind](a.ref)


def _remove_network(api: Any, a: Artifact, timeout_s: float = 20.0) -> None:
    """An attachable swarm network that a standalone container used is removed
    twice: the first removal takes the node's copy, the swarm's stays (and says
    "not found" for a moment); one a removed service's task still holds is in use
    for a moment. Removed until its name is no longer listed."""
    import docker.errors

    deadline = time.monotonic() + timeout_s
    while True:
        error = None
        try:
            api.remove_network(a.ref)
        except docker.errors.APIError as exc:
            # "not found", or still in use by a service's task being removed
            error = exc
        left = [n for n in api.networks(names=[a.name]) if n.get("Name") == a.name]
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"network {a.name} could not be removed: {error}")
        a = Artifact(a.kind, str(left[0]["Id"]), a.name, a.workspace)
        time.sleep(0.2)


def remove_workspace_artifacts(client: Any, ids: set[str]) -> list[Artifact]:
    """Remove every artifact of these workspaces; return what there was."""
    found = workspace_artifacts(client, ids)
    remove_artifacts(client, found)
    return found
