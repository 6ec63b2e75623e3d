"""The platform's own story in a real terminal (tmux), keys only, on Docker:

`n` creates a private processing from the template; its code is made to raise (the
test edits main.py on disk, as the user would in an editor); `b` builds its image
while the build log is on screen; the launch fails with the stack trace at a
glance; the code is fixed; `b` rebuilds; `r` re-runs the job, which now succeeds:
the re-run ran the fixed image, and the run history shows two different image
digests and marks the run where it changed.

The screens seen are written to `<tmp>/screens-*.txt` (and, with
PICSELLIA_E2E_SCREENS=<file>, copied there for a closing note).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_tmux import EXE, Tmux, _run, has
from tests.e2e.test_tmux import tmux as tmux

pytestmark = [pytest.mark.slow, pytest.mark.docker]
BUG = '    raise RuntimeError("broken on purpose: the e2e test put this bug here")\n'
ANCHOR = '    tag = str(context.get("parameters", {}).get("tag") or "processed")\n'


@pytest.fixture
def docker_workspace(tmp_path: Path, docker_client: Any) -> Iterator[tuple[Path, Path, str]]:
    """A demo workspace (real digits models) whose executor is the local Docker;
    yields (config, where new processings go, the processing's name). The images
    the test builds are removed at the end."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    data = tmp_path / "data"
    _run(EXE, "--data-dir", data, "--executor", "docker", "demo", "--no-open", "--no-build")
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'organization = "demo"\ndata_dir = "{data}"\nexecutor = "docker"\nheartbeat_seconds = 1.0\n'
    )
    work = tmp_path / "work"
    work.mkdir()
    name = f"e2e-fix-{uuid.uuid4().hex[:6]}"
    yield cfg, work, name
    for image in docker_client.images.list(name=f"picsellia-tui/{name}"):
        try:
            docker_client.images.remove(image.id, force=True)
        except Exception:
            pass


def test_fix_the_code_rebuild_and_rerun(
    docker_workspace: tuple[Path, Path, str], tmux: Tmux
) -> None:
    cfg, work, name = docker_workspace
    t = tmux
    t.start(f"sh -c 'cd {work} && exec {EXE} --config {cfg}'")
    t.wait("the app is up on the Processings tab", has("1 Processings", "model-converter"))

    # n: a new private processing from the template, in the app's folder.
    t.keys("n")
    t.wait("the new-processing dialog", has("New private processing", "the template"))
    t.keys("Right", "Tab")
    t.wait("from the template", has("A new folder DEST/NAME from the template", "destination"))
    t.tmux("send-keys", "-t", "app", "-l", name)
    t.keys("Enter")
    t.wait("created and selected", has(f"{name} 0.1.0  private", f"picsellia-tui/{name}:0.1.0"))
    main_py = work / name / "main.py"
    assert main_py.is_file()

    # The user's code has a bug.
    code = main_py.read_text()
    assert ANCHOR in code
    main_py.write_text(code.replace(ANCHOR, BUG + ANCHOR))

    # b: build it; the build log streams into the pane.
    t.keys("b")
    t.wait("the build dialog", has(f"Build {name}", "host", "local"))
    t.keys("Enter")
    t.wait("the build log on screen", has("Step 1/", "FROM python:3.11-slim"), timeout=120)
    t.wait("built", has("✓ built", f"picsellia-tui/{name}:0.1.0"), timeout=300)
    t.keys("Escape")
    t.wait("the image is present", has(f"{name} 0.1.0", "✓ present on the host"))

    # enter: launch it on a version; it fails with the stack trace at a glance.
    t.keys("Enter")
    t.wait(
        "the launch dialog, its form ready",
        lambda s: f"Launch {name}" in s and re.search(r"new version\s+v1-", s) is not None,
    )
    t.keys("Enter")  # the version picked: into the form
    t.keys("Enter")  # launch
    failed = t.wait(
        "job 1 failed, its stack trace shown",
        has("job 1 ✗ failed", "RuntimeError: broken on purpose", 'File "/app/main.py"'),
        timeout=120,
    )
    first = re.search(r"#1\s+✗ failed.*\s([0-9a-f]{12})\b", failed, re.M)
    assert first, failed  # the run's image digest, short

    # The fix, then b again from the Processings tab.
    main_py.write_text(code)
    t.keys("1")
    t.wait("back on the Processings tab", has(f"{name} 0.1.0  private"))
    t.keys("b")
    t.wait("the build dialog again", has(f"Build {name}"))
    t.keys("Enter")
    t.wait("rebuilt", has("✓ built", f"picsellia-tui/{name}:0.1.0"), timeout=300)
    t.keys("Escape")
    # (Waited for: an `esc` followed at once by `3` reads as alt+3 in a terminal.)
    t.wait("the build dialog closed", lambda s: f"Build {name}" not in s)

    # r: the re-run takes the fixed image and succeeds.
    t.keys("3")
    t.wait("the Jobs tab on job 1", has("job 1 ✗ failed"))
    t.keys("r")
    t.wait("re-run confirmation", has("Re-run job 1?", "run #2"))
    t.keys("y")
    # The run history: each run's image digest, short; the re-run ran the rebuilt
    # image, a different digest, marked (●) where it changed. (Waited for: the
    # run-end notices may cover the column for a few seconds.)
    # (the digest is followed by the 'where' column: the host, and a swarm run's node)
    ran = r"#1\s+✗ failed.*\s([0-9a-f]{12})\b"
    rerun = r"#2\s+✓ succeeded.*\s● ([0-9a-f]{12})\b"
    final = t.wait(
        "run #2 succeeded, marked as on another image",
        lambda s: (
            "job 1 ✓ succeeded" in s
            and re.search(ran, s, re.M) is not None
            and re.search(r"#2\s+✓ succeeded.*\s● ", s, re.M) is not None
        ),
        timeout=120,
    )
    one = re.search(ran, final, re.M)
    assert one and one.group(1) == first.group(1), final
    # Its digest, short, once the notices do not cover it. Seen under load: the
    # notices raised within a few seconds of each other (launch, failure, re-run,
    # success) stayed on screen for minutes with the app idle (py-spy: event loop
    # waiting); the history then is read from `jobs show --json` instead.
    try:
        final = t.wait("run #2's digest visible", lambda s: re.search(rerun, s, re.M) is not None)
        two = re.search(rerun, final, re.M)
        assert two is not None
        second = two.group(1)
    except AssertionError:
        out = _run(EXE, "--config", cfg, "jobs", "show", "1", "--json").stdout
        runs = json.loads(out)["runs"]
        second = runs[1]["image_digest"].removeprefix("sha256:")[:12]
        assert runs[0]["image_digest"].removeprefix("sha256:")[:12] == first.group(1)
    assert first.group(1) != second
    t.keys("q")
    t.wait("the app quit", lambda s: "Pane is dead" in s or "picsellia-tui" not in s, timeout=20)
    keep = os.environ.get("PICSELLIA_E2E_SCREENS")
    if keep:
        Path(keep).write_text(t.log.read_text())
