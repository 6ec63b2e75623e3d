"""Stable Picsellia identifiers (UUIDs) for the workspace's integer row ids.

The SDK parses every id as a UUID; our rows have integer keys. An id here is a
version-8 UUID whose first six bytes tag the workspace and the kind of object and
whose last seven hold the row id, so it is stable across engine restarts, tells a
model from a version, and decodes without a lookup table. A UUID of another kind
or another workspace decodes to None (the route answers 404).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Literal

Kind = Literal["model", "version", "file", "job", "connector"]
_KIND_CODE: dict[str, int] = {"model": 1, "version": 2, "file": 3, "job": 4, "connector": 5}
_MAX_ID = (1 << 56) - 1


class Ids:
    def __init__(self, workspace_id: str) -> None:
        self._tags = {
            kind: hashlib.sha256(f"{workspace_id}:{kind}".encode()).digest()[:6]
            for kind in _KIND_CODE
        }

    def encode(self, kind: Kind, row_id: int) -> str:
        if not 0 <= row_id <= _MAX_ID:
            raise ValueError(f"row id {row_id} out of range")
        raw = bytearray(self._tags[kind])
        raw += bytes([0x80, _KIND_CODE[kind], 0x80]) + row_id.to_bytes(7, "big")
        return str(uuid.UUID(bytes=bytes(raw)))

    def decode(self, kind: Kind, text: object) -> int | None:
        try:
            raw = uuid.UUID(str(text)).bytes
        except ValueError:
            return None
        if raw[:6] != self._tags[kind] or raw[6:9] != bytes([0x80, _KIND_CODE[kind], 0x80]):
            return None
        return int.from_bytes(raw[9:], "big")
