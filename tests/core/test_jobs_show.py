"""`jobs show` as a terminal shows it (issue 11: the error summary was printed without
its final line end, gluing the next line to it). A summary may hold what a terminal
acts on (a cursor move, a carriage return: rows written before summaries were
cleaned, or by another engine version); each of its lines ends where it ends."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from tests.core.helpers import FIXTURES
from tests.core.test_config_cli import _cli


def test_error_summary_lines_end_cleanly(tmp_path: Path) -> None:
    (tmp_path / "procs").mkdir()
    shutil.copytree(FIXTURES / "proc_copy", tmp_path / "procs" / "test-copy")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"x")
    assert (
        _cli(tmp_path, "models", "import", "m/v1", str(model), "--framework", "onnx").returncode
        == 0
    )
    r = _cli(tmp_path, "launch", "test-copy", "m/v1", "-p", "fail=true", "--wait")
    assert r.returncode == 1
    con = sqlite3.connect(tmp_path / "data" / "picsellia.db")
    with con:
        con.execute(
            "UPDATE run SET error_summary = ? WHERE id = 1",
            ("exited with code 1\n 50%|#####     |\r100%|##########|\x1b[1A\nValueError: bad\r",),
        )
    con.close()
    out = _cli(tmp_path, "jobs", "show", "1").stdout
    tail = out.split("error summary of the last run:\n", 1)[1]
    assert tail == "exited with code 1\n100%|##########|\nValueError: bad\n", repr(tail)
