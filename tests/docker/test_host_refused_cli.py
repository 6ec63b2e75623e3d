"""`launch --wait` on an ssh:// host whose key is unknown (issue 11): the terminal
gets the one-line reason, not the engine's 100-line traceback ("supervising run N
failed ..."); what the engine has to say goes to its log file in the data dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CLI = Path(sys.executable).with_name("picsellia-tui")


def test_unknown_host_key_is_one_line_on_the_terminal(sshd_host: Any, tmp_path: Path) -> None:
    procs = tmp_path / "procs"
    shutil.copytree(FIXTURES / "proc_copy", procs / "test-copy")
    config = tmp_path / "config.toml"
    config.write_text(
        f'default_host = "remote"\n[[hosts]]\nname = "remote"\nurl = "{sshd_host.url}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICSELLIA_TUI_")}
    env.update(
        PATH=f"{sshd_host.bin_dir_unknown_key}{os.pathsep}{os.environ['PATH']}",
        PICSELLIA_TUI_CONFIG=str(config),
        PICSELLIA_TUI_DATA_DIR=str(tmp_path / "data"),
        PICSELLIA_TUI_PROCESSINGS_DIR=str(procs),
        PICSELLIA_TUI_EXECUTOR="docker",
        NO_COLOR="1",
    )
    model = tmp_path / "model.onnx"
    model.write_bytes(b"x")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CLI), *args], env=env, capture_output=True, text=True, timeout=240
        )

    assert cli("models", "import", "m/v1", str(model), "--framework", "onnx").returncode == 0
    p = cli("launch", "test-copy", "m/v1", "--wait")
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert "Traceback" not in out and "supervising run" not in out, out
    reason = [line for line in p.stderr.splitlines() if "host key unknown" in line]
    assert len(reason) == 1, out
    assert len(p.stderr.splitlines()) == 2, out  # "job 1: ..." and the reason
    log = (tmp_path / "data" / "engine.log").read_text()
    assert "host key unknown" in log
