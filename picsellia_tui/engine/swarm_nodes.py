"""What `doctor` says about a Swarm host: the manager and each node (state,
availability, CPUs, memory, generic resources such as GPUs, labels, and whether
the processings' images are there)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from picsellia_tui.humanize import size as human_size


@dataclass
class NodeInfo:
    id: str
    hostname: str
    role: str
    state: str  # ready | down | disconnected | unknown
    availability: str  # active | pause | drain
    cpus: float
    memory_bytes: int
    generic: dict[str, int] = field(default_factory=dict)  # kind -> count (GPUs)
    labels: dict[str, str] = field(default_factory=dict)
    local: bool = False  # the node whose daemon we talk to (its images are visible)

    def line(self) -> str:
        res = ", ".join(f"{k}={v}" for k, v in sorted(self.generic.items())) or "none"
        labels = ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items())) or "none"
        return (
            f"{self.role} {self.state}/{self.availability}, {self.cpus:g} CPUs, "
            f"{human_size(self.memory_bytes)} memory, generic resources: {res}, labels: {labels}"
        )


def manager_problem(info: dict[str, Any]) -> str | None:
    """Why this daemon cannot place runs on a Swarm, or None."""
    swarm = info.get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active":
        return "this daemon is not part of a swarm (run: docker swarm init)"
    if not swarm.get("ControlAvailable"):
        return "this daemon is a swarm worker, not a manager (point the host at a manager)"
    return None


def list_nodes(api: Any, local_node: str) -> list[NodeInfo]:
    out: list[NodeInfo] = []
    for n in api.nodes():
        spec = n.get("Spec") or {}
        desc = n.get("Description") or {}
        res = desc.get("Resources") or {}
        generic: dict[str, int] = {}
        for g in res.get("GenericResources") or []:
            discrete = g.get("DiscreteResourceSpec")
            named = g.get("NamedResourceSpec")
            if discrete:
                kind = str(discrete.get("Kind"))
                generic[kind] = generic.get(kind, 0) + int(discrete.get("Value") or 0)
            elif named:
                kind = str(named.get("Kind"))
                generic[kind] = generic.get(kind, 0) + 1
        out.append(
            NodeInfo(
                id=str(n.get("ID")),
                hostname=str(desc.get("Hostname") or n.get("ID")),
                role=str(spec.get("Role") or "worker"),
                state=str((n.get("Status") or {}).get("State") or "unknown"),
                availability=str(spec.get("Availability") or "active"),
                cpus=int(res.get("NanoCPUs") or 0) / 1e9,
                memory_bytes=int(res.get("MemoryBytes") or 0),
                generic=generic,
                labels={str(k): str(v) for k, v in (spec.get("Labels") or {}).items()},
                local=str(n.get("ID")) == local_node,
            )
        )
    return sorted(out, key=lambda n: (not n.local, n.hostname))
