"""A Docker host as configured. Kept apart from hosts.py so that reading the
configuration does not import the Docker SDK (the command line starts faster)."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator, model_validator


class HostConfig(BaseModel):
    """One Docker host as configured (`[hosts.NAME]` in the config file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "local"
    url: str = "local"  # local | unix:///path | ssh://user@host[:port] | tcp://host:port
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_verify: bool = True

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
