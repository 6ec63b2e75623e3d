"""Secrets seen by another local user (issue 16, item 4): a secret given as
`-p NAME=VALUE` sat in `ps -eo args` for the whole run. Given from a file, the
environment or a prompt, no process's command line holds it while the run goes
on. (What every user may read: /proc/*/cmdline; another user cannot read our
environment or our files.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from picsellia_tui.engine.config import Settings
from tests.reliability.helpers import (
    SECRET,
    Tally,
    cli_env,
    config_file,
    make_settings,
    model_file,
    run_cli,
)

AREA = "security"
K = "secrets visible to another user"
EXE = str(Path(sys.executable).with_name("picsellia-tui"))


def _given_token(s: Settings) -> str | None:
    """The token the job was launched with (the workspace keeps it encrypted)."""
    from sqlmodel import select

    from picsellia_tui.engine.workspace import Workspace
    from picsellia_tui.storage.models import Job

    ws = Workspace(s)
    try:
        with ws.db.read() as session:
            job = session.exec(select(Job)).first()
        return None if job is None else ws.decrypt(job.secrets_enc).get("token")
    finally:
        ws.close()


def _cmdlines() -> list[bytes]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out.append(Path(f"/proc/{pid}/cmdline").read_bytes())
            except OSError:
                continue
    return out


@pytest.mark.parametrize("way", ["@file", "@env", "@- (stdin)"])
def test_a_secret_given_another_way_is_not_in_any_command_line(
    tmp_path: Path, tally: Tally, way: str
) -> None:
    s = make_settings(tmp_path)
    cfg = config_file(s, tmp_path / "config.toml")
    env = cli_env()
    out = run_cli(["--config", str(cfg), "models", "import", "m/v1", str(model_file(tmp_path))],
                  env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    stdin = None
    if way == "@file":
        f = tmp_path / "token.txt"
        f.write_text(SECRET + "\n")
        f.chmod(0o600)
        value = f"@{f}"
    elif way == "@env":
        env["PICSELLIA_TUI_SECRET_TOKEN"] = SECRET
        value = "@env"
    else:
        value, stdin = "@-", SECRET + "\n"
    p = subprocess.Popen(
        [EXE, "--config", str(cfg), "launch", "rel-probe", "m/v1", "-p", f"token={value}",
         "-p", "sleep=3", "--wait"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    if stdin is not None:
        assert p.stdin is not None
        p.stdin.write(stdin)
        p.stdin.flush()
    seen = False
    deadline = time.monotonic() + 60
    while p.poll() is None and time.monotonic() < deadline:
        seen = seen or any(SECRET.encode() in c for c in _cmdlines())
        time.sleep(0.1)
    stdout, stderr = p.communicate(timeout=60)
    ok = p.returncode == 0 and not seen and _given_token(s) == SECRET
    tally.bad(AREA, ok, f"secret via {way}: rc {p.returncode}, in a command line: {seen}", K)
    assert ok, (p.returncode, seen, stdout[-500:], stderr)


def test_secret_ways_refuse_cleanly(tmp_path: Path, tally: Tally) -> None:
    s = make_settings(tmp_path)
    cfg = config_file(s, tmp_path / "config.toml")
    for value, words in (
        (f"@{tmp_path}/missing", "No such file"),
        ("@env", "PICSELLIA_TUI_SECRET_TOKEN"),
    ):
        out = run_cli(["--config", str(cfg), "launch", "rel-probe", "m/v1", "-p", f"token={value}"],
                      env=cli_env())  # fmt: skip
        ok = out.returncode == 2 and words in out.stderr and len(out.stderr.splitlines()) == 1
        tally.bad(AREA, ok, f"-p token={value}: rc {out.returncode} {out.stderr[:80]!r}", K)
        assert ok, (out.returncode, out.stderr)
    # `-p seconds` without '=' is a usage error like the others (exit 2, was 1).
    out = run_cli(["--config", str(cfg), "launch", "rel-probe", "m/v1", "-p", "seconds"],
                  env=cli_env())  # fmt: skip
    assert out.returncode == 2 and "NAME=VALUE" in out.stderr, out.stderr
