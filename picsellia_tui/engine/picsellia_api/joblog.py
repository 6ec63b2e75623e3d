"""Lines posted to /api/v2/job/{id}/logging, as lines of the run's log.

Picsellia's base images run the script with its output redirected to a file and a
side process posts each line, so for those images this *is* the log. Each line is
stored with the run's stdout/stderr, in arrival order, marked with a dim `[api]`
prefix (plain `[api] ` in search and export). Picsellia's markers:

- `--#--Name` starts a section: stored as a bold header line `── Name ──`;
- `-----`, `--*--` (section start/end) and `--N--` (logging buffer) are layout
  hints for Picsellia's web page: not stored;
- `--ec-- N` carries the script's exit code: stored as a readable line;
- a progress line (`special` set, or a line holding a carriage return as tqdm
  writes them) replaces the previous progress line: consecutive ones are held and
  only the latest is stored, when another line comes, at the end of the run, or
  at most every PROGRESS_EVERY_S so a long bar still moves in the log pane.
"""

from __future__ import annotations

import re
import time
from typing import Any

from picsellia_tui.engine.executors.base import LogLine

MARK = "\x1b[2m[api]\x1b[22m "
PROGRESS_EVERY_S = 5.0
MAX_LINES_PER_POST = 10_000
_SECTION = re.compile(r"^--#--(.*)$")
_HINT = re.compile(r"^(?:-----|--\*--|--\d+--)$")
_EXIT = re.compile(r"^--ec--\s*(-?\d+)\s*$")


def header(title: str) -> str:
    return f"{MARK}\x1b[1m── {title.strip() or 'section'} ──\x1b[22m"


class JobLog:
    def __init__(self) -> None:
        self._progress: LogLine | None = None
        self._progress_first = 0.0

    def feed(self, body: dict[str, Any]) -> list[LogLine]:
        """The lines to store now for one POST body."""
        raw = body.get("log", "")
        if isinstance(raw, list):
            texts = [str(x) for x in raw]
        elif isinstance(raw, str):
            texts = raw.split("\n")
            if len(texts) > 1 and texts[-1] == "":
                texts.pop()
        else:
            texts = [str(raw)]
        special = body.get("special")
        progress = special not in (None, False, "", [], "false", "False")
        out: list[LogLine] = []
        now = time.time_ns()
        for text in texts[:MAX_LINES_PER_POST]:
            text = text.rstrip("\n")
            stripped = text.strip()
            if _HINT.match(stripped):
                continue
            m = _SECTION.match(stripped)
            if m:
                out += self._release()
                out.append(LogLine(now, "api", header(m.group(1))))
                continue
            m = _EXIT.match(stripped)
            if m:
                out += self._release()
                out.append(LogLine(now, "api", f"{MARK}the script exited with code {m[1]}"))
                continue
            if progress or "\r" in text:
                shown = next((seg for seg in reversed(text.split("\r")) if seg.strip()), "")
                line = LogLine(now, "api", MARK + shown)
                if self._progress is None:
                    self._progress_first = time.monotonic()
                elif time.monotonic() - self._progress_first >= PROGRESS_EVERY_S:
                    out += self._release()
                    self._progress_first = time.monotonic()
                self._progress = line
                continue
            out += self._release()
            out.append(LogLine(now, "api", MARK + text))
        if body.get("final"):
            out += self._release()
        return out

    def _release(self) -> list[LogLine]:
        if self._progress is None:
            return []
        line, self._progress = self._progress, None
        return [line]

    def flush(self) -> list[LogLine]:
        """The progress line still held (at the end of the run)."""
        return self._release()
