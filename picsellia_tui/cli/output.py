"""Command-line output: tables for people, JSON for scripts. Plain text, no Rich,
so scripted use stays cheap."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from picsellia_tui.humanize import duration, size, when

__all__ = ["duration", "emit_json", "size", "table", "when"]


def emit_json(data: Any) -> None:
    """Views (pydantic models) and plain namespaces (answers of a running engine)
    print the same. Always strict JSON: a non-finite number (NaN, +/-Infinity,
    which rows stored before validation refused them may hold) prints as null,
    as JavaScript's JSON.stringify and pydantic's JSON mode do."""
    json.dump(_plain(data), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def _plain(o: Any) -> Any:
    """`o` as JSON values only, non-finite floats as None."""
    if o is None or isinstance(o, str | bool | int):
        return o
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): _plain(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_plain(v) for v in o]
    if hasattr(o, "model_dump"):
        return _plain(o.model_dump(mode="json"))
    if isinstance(o, SimpleNamespace):
        return _plain(vars(o))
    if isinstance(o, datetime):
        return o.isoformat()
    return str(o)


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
