"""S3-style multipart uploads, joined as their parts arrive.

The SDK sends a big file as 25 MiB parts, one after the other, then asks to join
them (`complete_part_upload`). Joining at the end meant reading every part again,
hashing and copying it into the blob store: a second pass over the whole file.
Here a part that arrives in order (the next number, nothing else being written)
is appended to one data file of the upload and hashed on the way in, so completing
is a sync and a rename into the blob store: the blob is whole or absent after a
crash, as for every blob.

Anything unusual keeps S3's meaning through the slow path: a part out of order or
sent again (a retry) goes to a file of its own, and completing then reads the
pieces named by the request (that part's own file, else its range of the data
file) into the blob store. The running hash lives in memory only; the ranges are
written to an index file, so an upload that spans an engine restart still joins
(the slow way).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from picsellia_tui.engine.picsellia_api.objects import Staging
from picsellia_tui.engine.picsellia_api.store import ApiError
from picsellia_tui.storage.blobs import BlobStore


@dataclass
class _Running:
    """The in-order parts of one upload: appended to its data file, hashed."""

    run_id: int
    hasher: Any = field(default_factory=hashlib.sha256)
    size: int = 0  # bytes appended (and hashed)
    parts: int = 0  # parts 1..parts are in the data file
    busy: bool = False  # a part is being appended


class PartWriter:
    """Writes one part's bytes (in worker threads, one call at a time)."""

    def __init__(
        self, staging: Staging, upload_id: str, part: int, running: _Running | None
    ) -> None:
        self._staging = staging
        self._upload_id = upload_id
        self._part = part
        self._running = running
        self._written = 0
        if running is not None:
            running.busy = True
            self._hasher = running.hasher.copy()  # adopted only if the part completes
            self._path = staging.data_path(upload_id)
            self._offset = running.size
        else:
            self._path = staging.part_path(upload_id, part)
            self._offset = 0
        self._tmp = (
            self._path if running is not None else self._path.with_name(self._path.name + ".tmp")
        )
        self._fd = -1

    @property
    def appended(self) -> bool:
        return self._running is not None

    def write(self, data: bytes) -> None:
        if self._fd < 0:
            flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
            self._fd = os.open(self._tmp, flags | (0 if self.appended else os.O_TRUNC), 0o600)
        if self.appended:
            self._hasher.update(data)  # releases the GIL: overlaps the next receive
        # pwrite at the part's own offset: bytes a failed part left are overwritten.
        view = memoryview(data)
        while view:
            n = os.pwrite(self._fd, view, self._offset + self._written)
            self._written += n
            view = view[n:]

    def finish(self) -> None:
        try:
            if self._fd < 0:
                self.write(b"")  # an empty part (the SDK sends one after an exact multiple)
        finally:
            self._close()
        running = self._running
        if running is None:
            self._tmp.replace(self._path)
            return
        with self._staging.index_path(self._upload_id).open("a") as idx:
            idx.write(f"{self._part} {self._offset} {self._written}\n")
        running.hasher = self._hasher
        running.size = self._offset + self._written
        running.parts = self._part
        running.busy = False

    def abort(self) -> None:
        self._close()
        if self._running is not None:
            self._running.busy = False  # the next attempt overwrites from the same offset
        else:
            with contextlib.suppress(OSError):
                self._tmp.unlink()

    def _close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


class Multipart:
    """Every multipart upload in progress, for all runs of this engine."""

    def __init__(self) -> None:
        self._running: dict[str, _Running] = {}

    def begin(self, staging: Staging, run_id: int) -> str:
        upload_id = staging.new_multipart()
        self._running[upload_id] = _Running(run_id)
        return upload_id

    def part_writer(self, staging: Staging, upload_id: str, part: int) -> PartWriter:
        """Where part `part` goes: appended when it is the next one and nothing else is
        being appended, else a file of its own (S3 semantics kept for the rest)."""
        staging.part_path(upload_id, part)  # checks the id and the number
        if not staging.has_multipart(upload_id):
            raise ApiError(404, "no such multipart upload")
        running = self._running.get(upload_id)
        if running is not None and (running.busy or part != running.parts + 1):
            running = None
        return PartWriter(staging, upload_id, part, running)

    def complete(
        self, staging: Staging, obj: str, upload_id: str, parts: list[int], blobs: BlobStore
    ) -> None:
        """Join the parts, in the order given, into one blob the object then names."""
        if not staging.has_multipart(upload_id):
            raise ApiError(404, "no such multipart upload")
        own = {n for n in parts if staging.part_path(upload_id, n).is_file()}
        running = self._running.get(upload_id)
        data = staging.data_path(upload_id)
        if (
            running is not None
            and not running.busy
            and not own
            and parts == list(range(1, running.parts + 1))
        ):
            # Every part arrived in order and was hashed on the way in.
            if running.parts == 0 or not data.is_file():
                data.touch(mode=0o600)
            sha, size = blobs.adopt(data, running.hasher.hexdigest(), running.size)
        else:
            ranges = _read_index(staging.index_path(upload_id))
            pieces: list[tuple[Path, int, int | None]] = []
            for n in parts:
                if n in own:
                    pieces.append((staging.part_path(upload_id, n), 0, None))
                elif n in ranges:
                    pieces.append((data, *ranges[n]))
                else:
                    raise ApiError(400, f"part {n} was never uploaded")
            with io.BufferedReader(_Concat(pieces), 1 << 20) as src:
                sha, size = blobs.put_stream(src)
        staging.hold(obj, sha, size)
        self.drop(staging, upload_id)

    def drop(self, staging: Staging, upload_id: str) -> None:
        self._running.pop(upload_id, None)
        staging.remove_multipart(upload_id)

    def forget_run(self, run_id: int) -> None:
        """The run is over (its staging folder goes with it)."""
        for upload_id in [u for u, r in self._running.items() if r.run_id == run_id]:
            del self._running[upload_id]


def _read_index(path: Path) -> dict[int, tuple[int, int]]:
    """part -> (offset, size) in the data file; a line a crash cut short is skipped."""
    out: dict[int, tuple[int, int]] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) == 3 and all(f.isdigit() for f in fields):
                out[int(fields[0])] = (int(fields[1]), int(fields[2]))
    return out


class _Concat(io.RawIOBase):
    """Pieces of files (path, offset, length or None for the rest) read one after
    the other, as one stream."""

    def __init__(self, pieces: list[tuple[Path, int, int | None]]) -> None:
        self._pieces = list(pieces)
        self._f: io.BufferedReader | None = None
        self._left: int | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while True:
            if self._f is None:
                if not self._pieces:
                    return 0
                path, offset, self._left = self._pieces.pop(0)
                self._f = path.open("rb")
                self._f.seek(offset)
            view = memoryview(b)
            if self._left is not None:
                view = view[: self._left]
            n: int = self._f.readinto(view) if len(view) else 0
            if n:
                if self._left is not None:
                    self._left -= n
                return n
            if self._left:
                raise ApiError(500, "an uploaded part is shorter than recorded")
            self._f.close()
            self._f = None

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        super().close()
