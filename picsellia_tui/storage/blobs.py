"""Content-addressed blob store for version files: sha256 names, dedup,
atomic writes (temp file + fsync + rename), verified on read."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


class BlobCorrupted(Exception):
    pass


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        (root / "tmp").mkdir(exist_ok=True, mode=0o700)

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"{sha256!r} is not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:]

    def put_stream(self, src: BinaryIO) -> tuple[str, int]:
        """Store the stream's bytes; return (sha256, size). Same bytes, one copy."""
        h = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = h.hexdigest()
            final = self.path_for(digest)
            if final.exists():
                os.unlink(tmp)
            else:
                final.parent.mkdir(exist_ok=True, mode=0o700)
                os.chmod(tmp, 0o400)
                os.replace(tmp, final)
            return digest, size
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def put_file(self, path: Path) -> tuple[str, int]:
        with path.open("rb") as f:
            return self.put_stream(f)

    def verify(self, sha256: str) -> Path:
        """The blob's path after checking its bytes still hash to its name."""
        p = self.path_for(sha256)
        h = hashlib.sha256()
        try:
            with p.open("rb") as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
        except FileNotFoundError:
            raise BlobCorrupted(f"blob {sha256[:12]} is missing from {self.root}") from None
        if h.hexdigest() != sha256:
            raise BlobCorrupted(f"blob {sha256[:12]} is corrupted (its bytes changed on disk)")
        return p
