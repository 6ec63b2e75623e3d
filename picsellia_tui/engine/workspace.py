"""A workspace on disk: database, blob store, logs, run folders, secrets key.

Opening it is synchronous and idempotent: directories created 0700, database
created 0600 (existing ones are checked, never chmod'ed: storage/private.py),
migrations applied, organization and user rows present.
"""

from __future__ import annotations

import hmac
import json
import os
import uuid
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlmodel import select

from picsellia_tui.engine.config import Settings
from picsellia_tui.engine.errors import EngineError
from picsellia_tui.storage.blobs import BlobStore
from picsellia_tui.storage.db import Database
from picsellia_tui.storage.models import Meta, Organization
from picsellia_tui.storage.private import UnsafePath, private_dir
from picsellia_tui.storage.repo import ensure_user


class Workspace:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.data_dir
        try:
            private_dir(self.root, "data dir")
            self.logs_dir = private_dir(self.root / "logs", "data dir")
            self.runs_dir = private_dir(self.root / "runs", "data dir")
            self.scratch_dir = private_dir(self.root / "scratch", "data dir")
            self.blobs = BlobStore(self.root / "blobs")
            self.db = Database(settings.database_path)
        except UnsafePath as exc:
            raise EngineError(str(exc)) from None
        try:
            self.db.migrate()
        except Exception as exc:
            raise EngineError(
                f"database {settings.database_path}: cannot be opened ({exc})"
            ) from None
        self._secret = _secret_key(self.root / "secret.key")
        self._fernet = Fernet(self._secret)
        with self.db.write() as s:
            meta = s.get(Meta, "workspace_id")
            if meta is None:
                meta = Meta(key="workspace_id", value=uuid.uuid4().hex)
                s.add(meta)
            self.workspace_id = meta.value
            org = s.exec(
                select(Organization).where(Organization.name == settings.organization)
            ).first()
            if org is None:
                org = Organization(id=uuid.uuid4().hex, name=settings.organization)
                s.add(org)
            self.organization_id = org.id
            user = ensure_user(s, settings.user)
            assert user.id is not None
            self.user_id = user.id

    def encrypt(self, values: dict[str, Any]) -> str | None:
        if not values:
            return None
        return self._fernet.encrypt(json.dumps(values).encode()).decode()

    def decrypt(self, token: str | None) -> dict[str, str]:
        if not token:
            return {}
        try:
            data: dict[str, str] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise EngineError(
                "the secret parameters of this job cannot be decrypted: "
                "secret.key of the data dir changed"
            ) from None
        return data

    def derive_key(self, purpose: str) -> bytes:
        """A key for one purpose, derived from the workspace's secret key (HMAC):
        stable across restarts, unknown to anyone without secret.key."""
        return hmac.new(self._secret, purpose.encode(), "sha256").digest()

    def close(self) -> None:
        self.db.close()


def _secret_key(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    key = Fernet.generate_key()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    try:
        os.link(tmp, path)  # first writer wins when two processes race
    except FileExistsError:
        pass
    os.unlink(tmp)
    return path.read_bytes().strip()
