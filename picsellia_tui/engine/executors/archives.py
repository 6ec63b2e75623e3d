"""Safe extraction of a run's outputs from a tar stream (Docker's `get_archive`).

The container is not trusted: its output folder may hold links to host files, device
nodes, paths that climb out of the folder, or simply too many bytes. `safe_extract`
refuses all of those with one clear `OutputRejected` line, and writes into a temporary
folder beside `dest` that is renamed into place only when everything passed, so a
refusal (or a crash) never leaves a half-written `dest` behind.

Pure Python, no Docker: unit-testable with hand-made tars.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from picsellia_tui.engine.executors.base import OutputRejected

__all__ = ["ChunkReader", "ExtractStats", "human_bytes", "safe_extract"]

_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ExtractStats:
    files: int
    dirs: int
    bytes: int


class ChunkReader(io.RawIOBase):
    """A readable binary file over an iterable of byte chunks (a streamed HTTP body)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._it: Iterator[bytes] = iter(chunks)
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    # typeshed's parameter is a WriteableBuffer; BufferedReader passes a memoryview.
    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            try:
                chunk = next(self._it)
            except StopIteration:
                return 0
            self._buf = memoryview(chunk)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.ischr() or member.isblk():
        return "a device file"
    if member.isfifo():
        return "a fifo"
    return f"an unsupported entry (tar type {member.type!r})"


def _q(name: str) -> str:
    """A member name quoted for a message: escaped, and cut when very long."""
    text = repr(name)
    return text if len(text) <= 80 else text[:79] + "…"


# Names become file names, database rows and text in tables and the TUI.
_BAD_NAME_RX = re.compile("[\x00-\x1f\x7f-\x9f]")
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024


def _relative_parts(name: str, strip_prefix: str | None) -> tuple[str, ...]:
    """Validate one member name; return its parts below `strip_prefix`."""
    if name.startswith("/"):
        raise OutputRejected(f"output entry {_q(name)} has an absolute path; refused")
    parts = PurePosixPath(name).parts
    if any(p == ".." for p in parts):
        raise OutputRejected(f"output entry {_q(name)} climbs out of the output folder; refused")
    if _BAD_NAME_RX.search(name):
        raise OutputRejected(f"output entry {_q(name)} has control characters in its name; refused")
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:  # tarfile decodes undecodable bytes as lone surrogates
        raise OutputRejected(
            f"output entry {_q(name)} has a name that is not UTF-8; refused"
        ) from None
    if len(raw) > MAX_PATH_BYTES or any(len(p.encode()) > MAX_NAME_BYTES for p in parts):
        raise OutputRejected(f"output entry {_q(name)} has a name too long; refused")
    if strip_prefix:
        if not parts or parts[0] != strip_prefix:
            raise OutputRejected(f"output entry {_q(name)} is outside {strip_prefix}/; refused")
        parts = parts[1:]
    return tuple(parts)


def _open_new(path: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags, 0o644)


def _ensure_dirs(root: Path, parts: tuple[str, ...], shown: str) -> Path:
    cur = root
    for part in parts:
        cur = cur / part
        if cur.is_symlink() or (cur.exists() and not cur.is_dir()):
            raise OutputRejected(f"output entry {_q(shown)} conflicts with a file of the same name")
        if not cur.exists():
            cur.mkdir(mode=0o755)
    return cur


def _extract_into(
    tar: tarfile.TarFile,
    root: Path,
    quota_bytes: int,
    strip_prefix: str | None,
    max_entries: int,
) -> ExtractStats:
    total = 0
    files = 0
    dirs = 0
    entries = 0
    for member in tar:
        name = member.name
        parts = _relative_parts(name, strip_prefix)
        shown = "/".join(((strip_prefix,) if strip_prefix else ()) + parts) or name
        if not parts:
            # The output folder itself.
            if member.isdir():
                continue
            raise OutputRejected(
                f"output folder {_q(name)} is {_kind(member)}, not a folder; refused"
            )
        entries += 1
        if entries > max_entries:
            raise OutputRejected(f"outputs hold more than {max_entries} entries; refused")
        if member.isdir():
            _ensure_dirs(root, parts, shown)
            dirs += 1
            continue
        if not member.isreg():
            detail = f" (to {_q(member.linkname)})" if member.issym() or member.islnk() else ""
            raise OutputRejected(
                f"output entry {_q(shown)} is {_kind(member)}{detail}; "
                "links, devices and fifos are refused"
            )
        total += member.size
        if total > quota_bytes:
            raise OutputRejected(
                f"outputs exceed the quota of {human_bytes(quota_bytes)} "
                f"(reached at {_q(shown)}); refused"
            )
        parent = _ensure_dirs(root, parts[:-1], shown)
        target = parent / parts[-1]
        if target.is_dir() and not target.is_symlink():
            raise OutputRejected(
                f"output entry {_q(shown)} conflicts with a folder of the same name"
            )
        src = tar.extractfile(member)
        if src is None:  # pragma: no cover - isreg() members always have data
            raise OutputRejected(f"output entry {_q(shown)} has no data")
        fd = _open_new(target)
        with os.fdopen(fd, "wb") as out:
            written = 0
            while True:
                chunk = src.read(_COPY_CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                out.write(chunk)
        if written != member.size:
            raise OutputRejected(f"output entry {_q(shown)} is truncated in the archive")
        if member.mtime:
            with contextlib.suppress(OverflowError, OSError, ValueError):
                os.utime(target, (member.mtime, member.mtime))
        files += 1
    return ExtractStats(files=files, dirs=dirs, bytes=total)


def safe_extract(
    tar_stream: bytes | IO[bytes] | Iterable[bytes],
    dest: Path,
    quota_bytes: int,
    strip_prefix: str | None = "outputs",
    *,
    max_entries: int = 100_000,
) -> ExtractStats:
    """Extract a tar stream into `dest` (which must not exist), all-or-nothing.

    `tar_stream` is bytes, a binary file or an iterable of byte chunks, read once.
    Entries must live under `strip_prefix/` (the folder name Docker puts at the top of
    `get_archive`), which is stripped. Refused with `OutputRejected` (and nothing left
    on disk): absolute paths, `..`, symbolic and hard links, device files, fifos,
    regular-file bytes over `quota_bytes`, more than `max_entries` entries, a corrupt
    archive. Files are written 0644 and folders 0755 whatever the archive says.
    """
    dest = Path(dest)
    if dest.exists() or dest.is_symlink():
        raise FileExistsError(f"{dest} already exists")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fileobj: IO[bytes]
    if isinstance(tar_stream, (bytes, bytearray)):
        fileobj = io.BytesIO(bytes(tar_stream))
    elif hasattr(tar_stream, "read"):
        fileobj = tar_stream  # type: ignore[assignment]  # hasattr does not narrow
    else:
        fileobj = io.BufferedReader(ChunkReader(tar_stream), buffer_size=256 * 1024)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        try:
            with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
                stats = _extract_into(tar, tmp, quota_bytes, strip_prefix, max_entries)
        except tarfile.TarError as exc:
            raise OutputRejected(f"outputs archive is unreadable: {exc}") from None
        except OSError as exc:
            if isinstance(exc, FileExistsError | IsADirectoryError | NotADirectoryError):
                raise OutputRejected(f"outputs hold conflicting entries: {exc}") from None
            raise
        os.chmod(tmp, 0o755)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return stats
