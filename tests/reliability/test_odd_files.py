"""Model import of files that are not plain, still files (issue 16, item 5): a
FIFO, a device, a file deleted, truncated or growing while it is read, an import
over the quota, an import killed half-way. Each is refused with one line (or
cleaned up), no blob or version is left from a refused import, and no temp file
stays in blobs/tmp."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.errors import InvalidInput
from tests.reliability.helpers import (
    Tally,
    cli_env,
    config_file,
    expect_refusal_async,
    make_settings,
    message_problem,
    run_cli,
)

pytestmark = pytest.mark.anyio
AREA = "hostile input"
K = "special or changing files"
EXE = str(Path(sys.executable).with_name("picsellia-tui"))


def _blobs(data: Path) -> list[Path]:
    return sorted(p for p in (data / "blobs").rglob("*") if p.is_file())


def _cli_refusal(tally: Tally, args: list[str], cfg: Path, what: str, data: Path) -> None:
    t0 = time.monotonic()
    try:
        out = run_cli(["--config", str(cfg), *args], env=cli_env(), timeout=60)
    except subprocess.TimeoutExpired:
        tally.bad(AREA, False, f"{what}: hung", K)
        raise
    first = out.stderr.strip()
    ok = (
        out.returncode == 2
        and message_problem(first) is None
        and "not a regular file" in first
        and not _blobs(data)
        and time.monotonic() - t0 < 30
    )
    tally.bad(AREA, ok, f"{what}: rc {out.returncode} {first[:120]!r}", K)
    assert ok, (out.returncode, out.stderr, _blobs(data))


def test_special_files_are_refused_at_once(tmp_path: Path, tally: Tally) -> None:
    s = make_settings(tmp_path)
    cfg = config_file(s, tmp_path / "config.toml")
    fifo = tmp_path / "fifo.onnx"
    os.mkfifo(fifo)  # opened for reading, it waits for a writer forever
    imp = ["models", "import", "m/v1", "--framework", "onnx"]
    _cli_refusal(tally, [*imp, str(fifo)], cfg, "import of a FIFO", s.data_dir)
    _cli_refusal(tally, [*imp, "/dev/zero"], cfg, "import of /dev/zero", s.data_dir)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"x" * 100)
    os.mkfifo(folder / "pipe")
    _cli_refusal(tally, [*imp, str(folder)], cfg, "folder holding a FIFO", s.data_dir)


def test_an_import_over_the_quota_is_refused(tmp_path: Path, tally: Tally) -> None:
    s = make_settings(tmp_path, import_quota="1k")
    cfg = config_file(s, tmp_path / "config.toml")
    f = tmp_path / "m.onnx"
    f.write_bytes(b"x" * 2048)
    out = run_cli(["--config", str(cfg), "models", "import", "m/v1", str(f), "--framework", "onnx"],
                  env=cli_env())  # fmt: skip
    ok = out.returncode == 2 and "import quota" in out.stderr and not _blobs(s.data_dir)
    tally.bad(AREA, ok, f"import over the quota: rc {out.returncode} {out.stderr[:100]!r}", K)
    assert ok, out.stderr


def _hook_reads(monkeypatch: pytest.MonkeyPatch, target: Path, on_first_read: Any) -> None:
    """Call on_first_read() once the import has read its first chunk of `target`.
    Hooked at io.open, which every way of opening a file for reading goes through
    (Path.open, open, os.fdopen), so the test does not depend on the store's own
    functions (it must fail on code that had other ones)."""
    orig_open = io.open
    st = target.stat()
    want = (st.st_dev, st.st_ino)
    fired = {"done": False}

    class Reader:
        def __init__(self, f: Any) -> None:
            self._f = f

        def read(self, *args: Any) -> bytes:
            data: bytes = self._f.read(*args)
            if not fired["done"]:
                fired["done"] = True
                on_first_read()
            return data

        def readinto(self, b: Any) -> int:
            n: int = self._f.readinto(b)
            if not fired["done"]:
                fired["done"] = True
                on_first_read()
            return n

        def __enter__(self) -> Reader:
            return self

        def __exit__(self, *exc: Any) -> None:
            self._f.close()

        def __iter__(self) -> Any:
            return iter(self._f)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._f, name)

    def hooked_open(file: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        f = orig_open(file, mode, *args, **kw)
        if "r" not in mode or "b" not in mode or fired["done"]:
            return f
        try:
            got = os.fstat(f.fileno())
        except (OSError, ValueError, AttributeError):
            return f
        return Reader(f) if (got.st_dev, got.st_ino) == want else f

    monkeypatch.setattr(io, "open", hooked_open)


@pytest.mark.parametrize("change", ["truncated", "grown", "deleted from the folder"])
async def test_a_file_changing_while_imported_is_refused_whole(
    tmp_path: Path, tally: Tally, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    s = make_settings(tmp_path)
    folder = tmp_path / "folder"
    folder.mkdir()
    big = folder / "a-big.onnx"
    big.write_bytes(os.urandom(3 * 1024 * 1024))  # a few reads of 1 MiB
    other = folder / "b-other.bin"
    other.write_bytes(b"second file")
    if change == "truncated":
        _hook_reads(monkeypatch, big, lambda: os.truncate(big, 1024 * 1024 + 10))
    elif change == "grown":

        def grow() -> None:
            with big.open("ab") as f:
                f.write(b"more" * 1000)

        _hook_reads(monkeypatch, big, grow)
    else:
        _hook_reads(monkeypatch, big, other.unlink)
    async with Engine(s) as e:
        exc = await expect_refusal_async(
            tally, AREA,
            lambda: e.import_version("m", "v1", [folder], framework="onnx"),
            InvalidInput, f"a file {change} during a folder import", klass=K,
        )  # fmt: skip
        assert "changed while it was read" in str(exc) or "cannot be read" in str(exc)
        assert await e.versions() == []
    assert not _blobs(s.data_dir), "a refused import left blobs or temp files"


def test_an_import_killed_halfway_leaves_no_temp_file(tmp_path: Path, tally: Tally) -> None:
    """SIGTERM while a big file is copied: the temp file it leaves is swept by
    the next command that opens the workspace (nobody holds its lock)."""
    s = make_settings(tmp_path)
    cfg = config_file(s, tmp_path / "config.toml")
    assert run_cli(["--config", str(cfg), "models", "list"], env=cli_env()).returncode == 0
    big = tmp_path / "big.onnx"
    with big.open("wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 20))
    tmpdir = s.data_dir / "blobs" / "tmp"
    p = subprocess.Popen(
        [EXE, "--config", str(cfg), "models", "import", "m/v1", str(big), "--framework", "onnx"],
        env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not any(tmpdir.iterdir()) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    p.send_signal(signal.SIGTERM)
    p.wait(30)
    left = list(tmpdir.iterdir())
    if p.returncode == 0:
        pytest.skip("the import finished before the signal")
    for f in left:  # as if the next command came a while later
        os.utime(f, (time.time() - 600, time.time() - 600))
    assert run_cli(["--config", str(cfg), "models", "list"], env=cli_env()).returncode == 0
    ok = not any(tmpdir.iterdir())
    tally.bad(AREA, ok, f"temp files left after SIGTERM: {len(left)} then {list(tmpdir.iterdir())}",
              K)  # fmt: skip
    assert ok
