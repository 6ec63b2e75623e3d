"""archives.safe_extract with hand-made hostile tars (pure Python, no Docker)."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import pytest

from picsellia_tui.engine.executors.archives import ChunkReader, safe_extract
from picsellia_tui.engine.executors.base import OutputRejected


def make_tar(*members: tuple[str, bytes | None, dict[str, object]]) -> bytes:
    """members: (name, data or None, TarInfo attributes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, attrs in members:
            info = tarfile.TarInfo(name)
            for k, v in attrs.items():
                setattr(info, k, v)
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


DIR = {"type": tarfile.DIRTYPE, "mode": 0o755}


def F(
    name: str, data: bytes = b"data", **attrs: object
) -> tuple[str, bytes | None, dict[str, object]]:
    return (name, data, attrs)


def D(name: str) -> tuple[str, bytes | None, dict[str, object]]:
    return (name, None, dict(DIR))


def L(name: str, kind: bytes, target: str = "") -> tuple[str, bytes | None, dict[str, object]]:
    return (name, None, {"type": kind, "linkname": target})


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_extracts_files_and_folders(tmp_path: Path) -> None:
    data = make_tar(
        D("outputs"),
        F("outputs/model.onnx", b"m" * 100),
        D("outputs/sub"),
        F("outputs/sub/deep/x.txt", b"x", mode=0o4755),  # parent dir not listed; setuid bit
    )
    dest = tmp_path / "out"
    stats = safe_extract(data, dest, quota_bytes=101)
    assert tree(dest) == ["model.onnx", "sub", "sub/deep", "sub/deep/x.txt"]
    assert (dest / "model.onnx").read_bytes() == b"m" * 100
    assert stats.files == 2 and stats.bytes == 101
    mode = stat.S_IMODE((dest / "sub/deep/x.txt").stat().st_mode)
    assert mode == 0o644  # never setuid, never what the archive says


def test_streamed_in_tiny_chunks(tmp_path: Path) -> None:
    data = make_tar(D("outputs"), F("outputs/a", b"a" * 5000), F("outputs/b", b"b" * 3))
    chunks = (data[i : i + 7] for i in range(0, len(data), 7))
    safe_extract(chunks, tmp_path / "out", 10_000)
    assert (tmp_path / "out" / "a").read_bytes() == b"a" * 5000


def test_chunk_reader_reads_across_chunks() -> None:
    r = io.BufferedReader(ChunkReader([b"ab", b"", b"cde", b"f"]))
    assert r.read() == b"abcdef"


def test_empty_outputs(tmp_path: Path) -> None:
    safe_extract(make_tar(D("outputs")), tmp_path / "out", 0)
    assert (tmp_path / "out").is_dir() and tree(tmp_path / "out") == []


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([D("outputs"), F("/etc/cron.d/evil")], "absolute path"),
        ([D("outputs"), F("outputs/../../evil")], "climbs out"),
        ([D("outputs"), F("outputs/sub/../../../evil")], "climbs out"),
        ([D("outputs"), L("outputs/passwd", tarfile.SYMTYPE, "/etc/passwd")], "symbolic link"),
        ([D("outputs"), L("outputs/rel", tarfile.SYMTYPE, "model.onnx")], "symbolic link"),
        (
            [D("outputs"), F("outputs/a"), L("outputs/b", tarfile.LNKTYPE, "outputs/a")],
            "hard link",
        ),
        ([D("outputs"), L("outputs/hl", tarfile.LNKTYPE, "/etc/shadow")], "hard link"),
        ([D("outputs"), L("outputs/null", tarfile.CHRTYPE)], "device file"),
        ([D("outputs"), L("outputs/sda", tarfile.BLKTYPE)], "device file"),
        ([D("outputs"), L("outputs/pipe", tarfile.FIFOTYPE)], "fifo"),
        ([L("outputs", tarfile.SYMTYPE, "/etc")], "symbolic link"),
        ([D("outputs"), F("elsewhere/x")], "outside outputs/"),
        ([D("outputs"), F("outputs/a", b"1" * 600), F("outputs/b", b"2" * 600)], "quota"),
        ([D("outputs"), F("outputs/x"), D("outputs/x/y")], "conflicts"),
        ([D("outputs"), D("outputs/x"), F("outputs/x")], "conflicts"),
    ],
)
def test_refused_and_nothing_left_behind(
    tmp_path: Path, members: list[tuple[str, bytes | None, dict[str, object]]], message: str
) -> None:
    parent = tmp_path / "runs"
    parent.mkdir()
    dest = parent / "outputs"
    with pytest.raises(OutputRejected, match=message) as info:
        safe_extract(make_tar(*members), dest, quota_bytes=1000)
    assert "\n" not in str(info.value)
    assert not dest.exists()
    assert list(parent.iterdir()) == []


def test_quota_is_inclusive(tmp_path: Path) -> None:
    data = make_tar(D("outputs"), F("outputs/a", b"1" * 600), F("outputs/b", b"2" * 400))
    safe_extract(data, tmp_path / "out", 1000)


def test_too_many_entries(tmp_path: Path) -> None:
    data = make_tar(D("outputs"), *[F(f"outputs/f{i}", b"") for i in range(11)])
    with pytest.raises(OutputRejected, match="more than 10 entries"):
        safe_extract(data, tmp_path / "out", 10_000, max_entries=10)


def test_corrupt_archive(tmp_path: Path) -> None:
    data = make_tar(D("outputs"), F("outputs/a", b"x" * 5000))
    with pytest.raises(OutputRejected, match=r"unreadable|truncated"):
        safe_extract(data[:1500], tmp_path / "out", 10_000)
    assert list(tmp_path.iterdir()) == []


def test_dest_must_not_exist(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError):
        safe_extract(make_tar(D("outputs")), tmp_path / "out", 10)


def test_without_prefix(tmp_path: Path) -> None:
    safe_extract(
        make_tar(F("a.txt", b"a"), F("d/b.txt", b"b")), tmp_path / "o", 10, strip_prefix=None
    )
    assert tree(tmp_path / "o") == ["a.txt", "d", "d/b.txt"]
