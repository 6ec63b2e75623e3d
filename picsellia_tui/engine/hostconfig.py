"""A Docker host as configured. Kept apart from hosts.py so that reading the
configuration does not import the Docker SDK (the command line starts faster)."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class HostConfig(BaseModel):
    """One Docker host as configured (`[hosts.NAME]` in the config file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "local"
    url: str = "local"  # local | unix:///path | ssh://user@host[:port] | tcp://host:port
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_verify: bool = True
    # kind = "swarm": the url reaches a Swarm manager; each run is a service there.
    kind: Literal["docker", "swarm"] = "docker"
    # Swarm: where tasks on any node reach the engine's local API (their file
    # channel), and the address the engine listens on for them (default: api_url's).
    api_url: str | None = None
    api_listen: str | None = None
    constraints: list[str] = []  # placement constraints of every run ("node.labels.x==y")
    gpu_constraints: list[str] = []  # added for processings that need a GPU
    gpu_resource: str = "gpu"  # the nodes' generic resource kind for GPUs
    networks: list[str] = []  # networks of tasks with network (default: the bridge)
    # cpu/memory as reservations too (Swarm then queues runs that do not fit). Off:
    # limits only, for swarms hit by moby #52652 (docs/cluster.md).
    reservations: bool = True
    # Seconds to reach the host (TCP connect, ssh handshake). Kept short and apart
    # from read timeouts, which a build or a followed log needs long.
    connect_timeout: float = Field(default=10.0, gt=0, le=600)
    # Seconds a run whose host answered once (its container exists) keeps trying
    # to reach it again after losing it (a daemon restart, an ssh drop) before the
    # run fails with that reason. A run being started gets connect_timeout only.
    reconnect_window: float = Field(default=90.0, ge=0, le=86400)

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        v = v.strip()
        if v == "local":
            return v
        scheme = v.split("://", 1)[0] if "://" in v else ""
        if scheme not in ("unix", "ssh", "tcp"):
            raise ValueError(
                f"host url {v!r} must be 'local', unix:///path, ssh://user@host[:port] "
                "or tcp://host:port"
            )
        parsed = urllib.parse.urlparse(v)
        if scheme == "unix" and not parsed.path:
            raise ValueError(f"host url {v!r} names no socket path")
        if scheme in ("ssh", "tcp"):
            if not parsed.hostname:
                raise ValueError(f"host url {v!r} names no host")
            try:
                _ = parsed.port
            except ValueError as exc:
                raise ValueError(f"host url {v!r}: {exc}") from None
            if parsed.path not in ("", "/"):
                raise ValueError(f"host url {v!r} must not have a path")
        if scheme == "tcp" and parsed.port is None:
            raise ValueError(f"host url {v!r} needs a port (tcp://host:2376)")
        return v

    @model_validator(mode="after")
    def _check_swarm(self) -> HostConfig:
        if self.kind != "swarm":
            if self.api_url or self.api_listen:
                raise ValueError(f"host {self.name!r}: api_url/api_listen apply to kind = swarm")
            return self
        if not self.api_url:
            raise ValueError(
                f"host {self.name!r}: a swarm host needs api_url, the address where tasks "
                "on its nodes reach this engine (e.g. http://10.0.0.5:18090)"
            )
        url = urllib.parse.urlparse(self.api_url)
        if url.scheme != "http" or not url.hostname or url.port is None:
            raise ValueError(f"host {self.name!r}: api_url must be http://ADDRESS:PORT")
        listen = self.api_listen or f"{url.hostname}:{url.port}"
        addr, _, port = listen.rpartition(":")
        if not addr or not port.isdigit():
            raise ValueError(f"host {self.name!r}: api_listen must be ADDRESS:PORT")
        return self

    @property
    def listen_address(self) -> tuple[str, int] | None:
        """Where the engine listens for a swarm host's tasks (None: not a swarm)."""
        if self.kind != "swarm" or not self.api_url:
            return None
        url = urllib.parse.urlparse(self.api_url)
        listen = self.api_listen or f"{url.hostname}:{url.port}"
        addr, _, port = listen.rpartition(":")
        return addr.strip("[]"), int(port)

    @model_validator(mode="after")
    def _check_tls(self) -> HostConfig:
        if self.uses_tls and self.scheme != "tcp":
            raise ValueError(f"host {self.name!r}: TLS settings only apply to tcp:// hosts")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError(f"host {self.name!r}: set both tls_cert and tls_key, or neither")
        return self

    @property
    def scheme(self) -> str:
        return "local" if self.url == "local" else self.url.split("://", 1)[0]

    @property
    def uses_tls(self) -> bool:
        return any(p is not None for p in (self.tls_ca, self.tls_cert, self.tls_key))

    @property
    def is_remote(self) -> bool:
        return self.scheme in ("ssh", "tcp")

    def __str__(self) -> str:
        return self.url
