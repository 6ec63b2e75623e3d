"""Content-addressed blob store for version files: sha256 names, dedup,
atomic writes (temp file + fsync + rename), verified on read. Imports take
regular files only, checked unchanged after reading, several files whole or not
at all; temp files of a killed process are swept when the store next opens."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from picsellia_tui.storage.private import private_dir

CHUNK = 1 << 20


class BlobCorrupted(Exception):
    pass


class ImportRefused(Exception):
    """A file that cannot be imported as it is (not a regular file, changed while
    read, over the quota); one line for the user."""


STALE_TMP_S = 60.0  # a temp file nobody holds a lock on, older than this, is a leftover


@dataclass
class Staged:
    """A file copied into the store's tmp folder, hashed, not yet in the store."""

    tmp: str
    sha256: str
    size: int
    fd: int  # holds the flock that tells a sweep the file is in use


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        private_dir(root, "blob store")
        private_dir(root / "tmp", "blob store")
        self._sweep()

    def _sweep(self) -> None:
        """Remove temp files a killed process left (SIGTERM, SIGKILL mid-import):
        a writer holds an flock on its temp file, a leftover has none."""
        now = time.time()
        try:
            names = os.listdir(self.root / "tmp")
        except OSError:
            return
        for name in names:
            p = self.root / "tmp" / name
            try:
                fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                if now - os.fstat(fd).st_mtime < STALE_TMP_S:
                    continue
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # in use
            finally:
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(p)

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"{sha256!r} is not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:]

    def _stage_stream(self, src: BinaryIO, limit: int | None = None) -> Staged:
        """Copy the stream into a locked temp file; ImportRefused past `limit`
        bytes. The temp file is gone again on any failure."""
        h = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            lock_fd = os.dup(fd)
            try:
                with os.fdopen(fd, "wb", closefd=True) as out:
                    while chunk := src.read(CHUNK):
                        size += len(chunk)
                        if limit is not None and size > limit:
                            raise ImportRefused(f"more than {limit} bytes")
                        h.update(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
            except BaseException:
                os.close(lock_fd)
                raise
            return Staged(tmp, h.hexdigest(), size, lock_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def stage_file(self, path: Path, quota: int | None = None) -> Staged:
        """Copy a regular file into the tmp folder, checking it did not change
        while read (same size and mtime before and after, every byte read)."""
        try:
            # O_NONBLOCK: opening a FIFO never waits for a writer; O_NOFOLLOW: a
            # link swapped in after the listing is not followed.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise ImportRefused(f"{path}: cannot be read ({exc.strerror or exc})") from None
        with os.fdopen(fd, "rb") as f:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise ImportRefused(f"{path}: not a regular file")
            if quota is not None and before.st_size > quota:
                raise ImportRefused(f"{path}: {before.st_size} bytes, over the quota {quota}")
            try:
                # One byte more than its size: a file growing meanwhile is caught.
                staged = self._stage_stream(f, before.st_size)
            except ImportRefused:
                raise ImportRefused(f"{path}: changed while it was read (it grew)") from None
            except OSError as exc:
                raise ImportRefused(f"{path}: cannot be read ({exc.strerror or exc})") from None
            after = os.fstat(fd)
            if (
                staged.size != before.st_size
                or after.st_size != before.st_size
                or after.st_mtime_ns != before.st_mtime_ns
            ):
                self.discard(staged)
                raise ImportRefused(
                    f"{path}: changed while it was read ({before.st_size} bytes, then "
                    f"{after.st_size}; {staged.size} read)"
                )
            return staged

    def commit(self, staged: Staged) -> tuple[str, int]:
        """Move a staged file into the store (or drop it: same bytes, one copy)."""
        try:
            final = self.path_for(staged.sha256)
            if final.exists():
                os.unlink(staged.tmp)
            else:
                final.parent.mkdir(exist_ok=True, mode=0o700)
                os.chmod(staged.tmp, 0o400)  # our own temp file
                os.replace(staged.tmp, final)
            return staged.sha256, staged.size
        finally:
            self._unlock(staged)

    def discard(self, staged: Staged) -> None:
        with contextlib.suppress(OSError):
            os.unlink(staged.tmp)
        self._unlock(staged)

    @staticmethod
    def _unlock(staged: Staged) -> None:
        if staged.fd >= 0:  # once: the number may belong to another file later
            fd, staged.fd = staged.fd, -1
            os.close(fd)

    def put_stream(self, src: BinaryIO) -> tuple[str, int]:
        """Store a stream's bytes; return (sha256, size). Same bytes, one copy."""
        staged = self._stage_stream(src)
        try:
            return self.commit(staged)
        except BaseException:
            self.discard(staged)
            raise

    def adopt(self, path: Path, sha256: str, size: int) -> tuple[str, int]:
        """Move into the store a file of this workspace whose bytes the caller hashed
        as it wrote them (a multipart upload joined as its parts came): synced, then
        renamed, so the blob is whole or absent after a crash. Saves the copy
        `put_stream` makes; another filesystem falls back to it."""
        final = self.path_for(sha256)
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size < size:
                raise ValueError(f"{path}: not the {size} bytes it should hold")
            os.ftruncate(fd, size)  # bytes past `size` were never hashed
            if final.exists():
                os.unlink(path)
                return sha256, size
            os.fsync(fd)
        finally:
            os.close(fd)
        final.parent.mkdir(exist_ok=True, mode=0o700)
        os.chmod(path, 0o400)
        try:
            os.replace(path, final)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            with path.open("rb") as src:
                return self.put_stream(src)
        return sha256, size

    def put_files(self, paths: list[Path], quota: int | None = None) -> list[tuple[str, int]]:
        """Store several files whole or not at all: all are staged (and checked)
        before any enters the store; on any failure every temp file goes."""
        staged: list[Staged] = []
        try:
            for p in paths:
                left = None if quota is None else quota - sum(x.size for x in staged)
                staged.append(self.stage_file(p, left))
        except BaseException:
            for x in staged:
                self.discard(x)
            raise
        out: list[tuple[str, int]] = []
        try:
            for x in staged:
                out.append(self.commit(x))
        except BaseException:
            for x in staged[len(out) :]:
                self.discard(x)
            raise
        return out

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
