"""The gates stay honest.

- Every name in the dead-code whitelist still exists in the package: a name kept
  there after its code went would hide the next dead code of that name.
- Every dependency of pyproject.toml is pinned in constraints.txt.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHITELIST = ROOT / ".ci" / "vulture_whitelist.py"


def test_vulture_whitelist_names_still_exist() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "picsellia_tui").rglob("*.py"))
    words = set(re.findall(r"\w+", source))
    listed = re.findall(r"^_\.(\w+)", WHITELIST.read_text(), re.M)
    assert listed, "no names found in the whitelist"
    gone = sorted(set(listed) - words)
    assert not gone, f"gone from the code, remove them from {WHITELIST.name}: {gone}"


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
