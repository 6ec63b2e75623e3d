"""The dead-code gate stays honest: every name in its whitelist is one vulture would
report without it (a name kept there after its code went would hide the next dead
code of that name)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHITELIST = ROOT / ".ci" / "vulture_whitelist.py"


def test_vulture_whitelist_lists_only_names_still_needed() -> None:
    vulture = Path(sys.executable).with_name("vulture")
    # Paths on the command line replace pyproject's (which add the whitelist).
    out = subprocess.run(
        [str(vulture), "picsellia_tui"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    reported = set(re.findall(r"unused \w+(?: \w+)? '([^']+)'", out.stdout))
    listed = re.findall(r"^_\.(\w+)", WHITELIST.read_text(), re.M)
    assert listed, "no names found in the whitelist"
    stale = sorted(set(listed) - reported)
    assert not stale, f"no longer needed in {WHITELIST.name}, remove them: {stale}"
