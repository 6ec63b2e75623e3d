"""Per-run credentials of the local Picsellia API.

A grant is what one run may do: read and write its job, read its target version
(and write it: files stored there update it, as `update_input`), create versions
of the target's model and read and write those. It exists only while the run is
active: the engine adds it when the run starts and removes it when the run ends,
so its token and every storage URL signed for it stop working at that moment.

The token is derived from the workspace's secret key and the run (an HMAC), so an
engine that restarts while the run goes on gives the container's token the same
grant again without storing the token anywhere; nobody without the key can
compute it. Tokens are only compared through their SHA-256 (a dict lookup), never
logged, never written to context.json or the database.
"""

from __future__ import annotations

import hashlib
import hmac
from base64 import urlsafe_b64encode
from dataclasses import dataclass, field
from pathlib import Path


def derive_token(key: bytes, workspace_id: str, run_id: int, created_at: str) -> str:
    msg = f"picsellia-api-token:{workspace_id}:{run_id}:{created_at}".encode()
    mac = hmac.new(key, msg, "sha256")
    return urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass
class Grant:
    run_id: int
    job_id: int
    target_version_id: int
    model_id: int
    staging: Path  # uploads waiting to become files (engine side, 0700)
    gid: str = ""  # public id of the grant in signed storage URLs (not the token)
    created_versions: set[int] = field(default_factory=set)
    reported: str | None = None  # last status the processing reported
    uploaded: int = 0  # bytes received for this run (bounded by the outputs quota)

    def readable(self, version_id: int) -> bool:
        return version_id == self.target_version_id or version_id in self.created_versions

    writable = readable


class GrantTable:
    def __init__(self) -> None:
        self._by_digest: dict[bytes, Grant] = {}
        self._by_gid: dict[str, Grant] = {}
        self._by_run: dict[int, bytes] = {}

    def add(self, grant: Grant, token: str) -> Grant:
        digest = _digest(token)
        self.remove(grant.run_id)
        grant.gid = hashlib.sha256(b"gid:" + digest).hexdigest()[:24]
        self._by_digest[digest] = grant
        self._by_gid[grant.gid] = grant
        self._by_run[grant.run_id] = digest
        return grant

    def by_token(self, token: str) -> Grant | None:
        return self._by_digest.get(_digest(token))

    def by_gid(self, gid: str) -> Grant | None:
        return self._by_gid.get(gid)

    def by_run(self, run_id: int) -> Grant | None:
        digest = self._by_run.get(run_id)
        return None if digest is None else self._by_digest.get(digest)

    def remove(self, run_id: int) -> Grant | None:
        digest = self._by_run.pop(run_id, None)
        if digest is None:
            return None
        grant = self._by_digest.pop(digest, None)
        if grant is not None:
            self._by_gid.pop(grant.gid, None)
        return grant

    def __len__(self) -> int:
        return len(self._by_run)
