"""Command-line output: tables for people, JSON for scripts. Plain text, no Rich,
so scripted use stays cheap."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from picsellia_tui.humanize import duration, size, when

__all__ = ["duration", "emit_json", "size", "table", "when"]


def emit_json(data: Any) -> None:
    """Views (pydantic models) and plain namespaces (answers of a running engine)
    print the same."""

    def default(o: Any) -> Any:
        if hasattr(o, "model_dump"):
            return o.model_dump(mode="json")
        if isinstance(o, SimpleNamespace):
            return vars(o)
        if isinstance(o, datetime):
            return o.isoformat()
        return str(o)

    json.dump(data, sys.stdout, indent=2, default=default)
    sys.stdout.write("\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[_cell(c) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in cells:
        for i, c in enumerate(r):
            widths[i] = min(max(widths[i], len(c)), 60)
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line.rstrip())
    for r in cells:
        print("  ".join(_fit(c, w) for c, w in zip(r, widths, strict=True)).rstrip())


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, datetime):
        return when(v)
    if isinstance(v, list | tuple):
        return ",".join(str(x) for x in v) or "-"
    return str(v).replace("\n", " ")


def _fit(s: str, w: int) -> str:
    return s.ljust(w) if len(s) <= w else s[: w - 1] + "…"
