"""The dead-code gate stays honest: every name in its whitelist is one vulture would
report without it (a name kept there after its code went would hide the next dead
code of that name)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
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


def _name(requirement: str) -> str:
    """PEP 503 normalised project name of a requirement line."""
    name = re.split(r"[\s\[<>=!~;(]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_dependency_is_pinned_in_constraints() -> None:
    """A dependency added to pyproject.toml without `./dev.sh lock` would install
    unpinned (pip's -c only bounds the packages it lists)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        declared |= {_name(r) for r in extra}
    declared.discard(_name(project["name"]))  # dev pulls in picsellia-tui[demo]
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = {_name(line): line for line in lines if line and not line.startswith("#")}
    assert all("==" in pin for pin in pins.values()), "constraints.txt pins exact versions"
    missing = sorted(declared - set(pins))
    assert not missing, f"not in constraints.txt, run ./dev.sh lock: {missing}"
