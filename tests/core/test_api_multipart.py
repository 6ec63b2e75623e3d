"""Multipart uploads of the local Picsellia API, joined as their parts arrive
(engine/picsellia_api/multipart.py): the blob is the parts in the order the
completion names them, whatever order, retries or restarts they came through."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from picsellia_tui.engine.picsellia_api.multipart import Multipart
from picsellia_tui.engine.picsellia_api.objects import Staging
from picsellia_tui.engine.picsellia_api.store import ApiError
from picsellia_tui.storage.blobs import BlobStore

OBJ = "uploads/abc/model.bin"


@pytest.fixture
def parts() -> list[bytes]:
    return [os.urandom(300_000), os.urandom(250_000), os.urandom(1000)]


def _setup(tmp_path: Path) -> tuple[Multipart, Staging, BlobStore]:
    return Multipart(), Staging(tmp_path / "staging"), BlobStore(tmp_path / "blobs")


def _put(mp: Multipart, st: Staging, upload: str, n: int, data: bytes, cut: bool = False) -> bool:
    """One part PUT, in 100 kB writes; `cut`: the client goes away half way."""
    w = mp.part_writer(st, upload, n)
    appended = w.appended
    for i in range(0, len(data), 100_000):
        if cut and i >= len(data) // 2:
            w.abort()
            return appended
        w.write(data[i : i + 100_000])
    w.finish()
    return appended


def _blob(st: Staging, blobs: BlobStore) -> bytes:
    held = st.blob(OBJ)
    assert held is not None
    sha, size = held
    data = blobs.verify(sha).read_bytes()
    assert len(data) == size and hashlib.sha256(data).hexdigest() == sha
    return data


def _left(st: Staging) -> list[str]:
    return sorted(p.name for p in st.root.iterdir() if not p.name.startswith("obj-"))


def test_parts_in_order_are_appended_and_become_the_blob(
    tmp_path: Path, parts: list[bytes]
) -> None:
    mp, st, blobs = _setup(tmp_path)
    up = mp.begin(st, run_id=1)
    assert all(_put(mp, st, up, n, d) for n, d in enumerate(parts, 1))
    assert _put(mp, st, up, 4, b"")  # the SDK's empty last part (an exact multiple)
    data_file = st.data_path(up)
    inode = data_file.stat().st_ino
    mp.complete(st, OBJ, up, [1, 2, 3, 4], blobs)
    assert _blob(st, blobs) == b"".join(parts)
    # The data file itself became the blob: no second copy.
    assert blobs.path_for(st.blob(OBJ)[0]).stat().st_ino == inode  # type: ignore[index]
    assert _left(st) == []


def test_parts_out_of_order_keep_s3_meaning(tmp_path: Path, parts: list[bytes]) -> None:
    mp, st, blobs = _setup(tmp_path)
    up = mp.begin(st, run_id=1)
    assert not _put(mp, st, up, 2, parts[1])  # a file of its own
    assert _put(mp, st, up, 1, parts[0])
    assert not _put(mp, st, up, 3, parts[2])  # 2 is not in the data file: 3 is not next
    mp.complete(st, OBJ, up, [1, 2, 3], blobs)
    assert _blob(st, blobs) == b"".join(parts)
    assert _left(st) == []


def test_a_part_sent_again_wins(tmp_path: Path, parts: list[bytes]) -> None:
    mp, st, blobs = _setup(tmp_path)
    up = mp.begin(st, run_id=1)
    _put(mp, st, up, 1, b"first try of part one")
    _put(mp, st, up, 2, parts[1])
    assert not _put(mp, st, up, 1, parts[0])  # the retry: its own file, it wins
    mp.complete(st, OBJ, up, [1, 2], blobs)
    assert _blob(st, blobs) == parts[0] + parts[1]


def test_a_part_cut_half_way_leaves_nothing_of_itself(tmp_path: Path, parts: list[bytes]) -> None:
    mp, st, blobs = _setup(tmp_path)
    up = mp.begin(st, run_id=1)
    _put(mp, st, up, 1, parts[0])
    assert _put(mp, st, up, 2, parts[1], cut=True)
    assert _put(mp, st, up, 2, parts[2])  # the retry is appended where the cut one began
    mp.complete(st, OBJ, up, [1, 2], blobs)
    assert _blob(st, blobs) == parts[0] + parts[2]


def test_a_shorter_part_list_uses_only_those(tmp_path: Path, parts: list[bytes]) -> None:
    mp, st, blobs = _setup(tmp_path)
    up = mp.begin(st, run_id=1)
    for n, d in enumerate(parts, 1):
        _put(mp, st, up, n, d)
    mp.complete(st, OBJ, up, [1, 2], blobs)
    assert _blob(st, blobs) == parts[0] + parts[1]


def test_an_upload_across_an_engine_restart_still_joins(tmp_path: Path, parts: list[bytes]) -> None:
    mp, st, blobs = _setup(tmp_path)
    up = mp.begin(st, run_id=1)
    _put(mp, st, up, 1, parts[0])
    _put(mp, st, up, 2, parts[1])
    again = Multipart()  # the next engine: no running hash, the files are still there
    assert not _put(again, st, up, 3, parts[2])
    again.complete(st, OBJ, up, [1, 2, 3], blobs)
    assert _blob(st, blobs) == b"".join(parts)


def test_missing_part_and_unknown_upload_are_refused(tmp_path: Path, parts: list[bytes]) -> None:
    mp, st, blobs = _setup(tmp_path)
    up = mp.begin(st, run_id=1)
    _put(mp, st, up, 1, parts[0])
    with pytest.raises(ApiError) as e:
        mp.complete(st, OBJ, up, [1, 2], blobs)
    assert e.value.status == 400 and "part 2" in e.value.message
    with pytest.raises(ApiError) as e:
        mp.part_writer(st, "0" * 32, 1)
    assert e.value.status == 404
    with pytest.raises(ApiError):
        mp.part_writer(st, up, 0)  # part numbers start at 1


def test_same_bytes_twice_is_one_blob(tmp_path: Path, parts: list[bytes]) -> None:
    mp, st, blobs = _setup(tmp_path)
    for obj in (OBJ, "uploads/def/again.bin"):
        up = mp.begin(st, run_id=1)
        _put(mp, st, up, 1, parts[0])
        mp.complete(st, obj, up, [1], blobs)
    assert st.blob(OBJ) == st.blob("uploads/def/again.bin")
    assert _left(st) == []
