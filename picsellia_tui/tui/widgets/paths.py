"""Path completion for text inputs: the rest of the first matching entry is
suggested as you type (→ or end accepts it), folders end with a slash."""

from __future__ import annotations

import os
from pathlib import Path

from textual.suggester import Suggester

MAX_SCAN = 2000  # entries looked at in one folder (a huge folder never stalls a key)


class PathSuggester(Suggester):
    def __init__(self, *, folders_only: bool = False) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.folders_only = folders_only

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        folder_part, _, stem = value.rpartition("/")
        folder = Path(os.path.expanduser(folder_part or "/")) if "/" in value else Path(".")
        matches: list[tuple[str, bool]] = []
        try:
            with os.scandir(folder) as entries:
                for i, entry in enumerate(entries):
                    if i >= MAX_SCAN:
                        break
                    name = entry.name
                    if not name.startswith(stem):
                        continue
                    if name.startswith(".") and not stem.startswith("."):
                        continue
                    is_dir = entry.is_dir()
                    if name == stem and not is_dir:
                        continue  # complete already (a folder still gets its slash)
                    if self.folders_only and not is_dir:
                        continue
                    matches.append((name, is_dir))
        except OSError:
            return None
        if not matches:
            return None
        name, is_dir = min(matches)
        return value + name[len(stem) :] + ("/" if is_dir else "")
