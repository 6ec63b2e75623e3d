"""The engine's log file: records go there, never to the terminal, even when the file
cannot be written."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_an_unwritable_engine_log_never_reaches_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    from picsellia_tui.engine import enginelog

    (tmp_path / "elsewhere").write_text("")
    (tmp_path / enginelog.LOG_NAME).symlink_to(tmp_path / "elsewhere")  # not followed
    enginelog.attach(tmp_path)
    try:
        logging.getLogger("picsellia_tui.engine").warning("run 1 failed: host key unknown")
    finally:
        enginelog.detach(tmp_path)
    assert capsys.readouterr().err == ""
    assert (tmp_path / "elsewhere").read_text() == ""
