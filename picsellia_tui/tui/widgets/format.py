"""How values look on screen: statuses, times, durations, sizes, metrics.

Statuses carry a symbol as well as a colour, so they stay readable with 16
colours or with NO_COLOR. Times go through one `Clock`, which tests and
screenshots freeze so that nothing volatile reaches a snapshot.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from picsellia_tui.humanize import duration as _duration
from picsellia_tui.humanize import size as _size

# Named ANSI colours: they survive a 16-colour terminal unchanged.
STATUS_STYLE = {
    "pending": "yellow",
    "running": "bold cyan",
    "succeeded": "green",
    "failed": "bold red",
    "killed": "magenta",
}
STATUS_SYMBOL = {
    "pending": "◌",
    "running": "●",
    "succeeded": "✓",
    "failed": "✗",
    "killed": "■",
}
TARGET_TITLES = {
    "model_version": "ModelVersion",
    "dataset_version": "DatasetVersion",
    "datalake": "Datalake",
}
KEY_METRICS = ("accuracy", "acc", "top1", "map", "mAP", "f1")


class Clock:
    """Formats times and durations; frozen, it renders fixed text instead."""

    def __init__(self, frozen: bool | None = None) -> None:
        if frozen is None:
            frozen = bool(os.environ.get("PICSELLIA_TUI_FREEZE_TIME"))
        self.frozen = frozen

    def now(self) -> datetime:
        return datetime.now(UTC)

    def when(self, dt: datetime | None) -> str:
        if dt is None:
            return "-"
        if self.frozen:
            return "12:00:00"
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        local = dt.astimezone()
        if local.date() == datetime.now().astimezone().date():
            return local.strftime("%H:%M:%S")
        return local.strftime("%Y-%m-%d %H:%M")

    def duration(self, start: datetime | None, end: datetime | None) -> str:
        if start is None:
            return "-"
        if self.frozen:
            return "1.0s" if end is not None else "…"
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        stop = end or self.now()
        if stop.tzinfo is None:
            stop = stop.replace(tzinfo=UTC)
        return _duration(max(0.0, (stop - start).total_seconds()))


def status_text(status: str, *, label: bool = True) -> Text:
    symbol = STATUS_SYMBOL.get(status, "?")
    return Text(f"{symbol} {status}" if label else symbol, style=STATUS_STYLE.get(status, ""))


def size(n: int | None) -> str:
    return _size(n)


def key_metrics(metrics: dict[str, Any], limit: int = 2) -> str:
    """The few metrics worth a column: accuracy-like ones first."""
    out: list[str] = []
    for key in KEY_METRICS:
        if key in metrics and len(out) < limit:
            out.append(f"{key} {_num(metrics[key], key)}")
    if not out:
        for key, value in metrics.items():
            if key in ("size_bytes", "parameters") or len(out) >= limit:
                continue
            out.append(f"{key} {_num(value, key)}")
    return ", ".join(out) or "-"


def _num(value: Any, key: str = "") -> str:
    if isinstance(value, float):
        if key.lower() in ("accuracy", "acc", "top1", "f1", "map") and 0 <= value <= 1:
            return f"{value:.1%}"
        return f"{value:.4g}"
    return str(value)


def metric_value(value: Any, key: str = "") -> str:
    return _num(value, key)


def num(x: float | None) -> str:
    """A bound as people write it: 1000000, 0.5 (not 1e+06)."""
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def truncate(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def constraints_summary(c: Any) -> str:
    parts = [",".join(c.frameworks) or "any"]
    if c.required_files:
        parts.append(",".join(c.required_files))
    if c.gpu:
        parts.append("gpu")
    if c.network:
        parts.append("net")
    parts += confinement_asked(c)
    return " ".join(parts)


def confinement_asked(c: Any) -> list[str]:
    """What a processing asked beyond the default confinement (none: [])."""
    out = []
    if getattr(c, "writable_rootfs", False):
        out.append("writable-root")
    if getattr(c, "capabilities", None):
        out.append("caps:" + ",".join(c.capabilities))
    if getattr(c, "secrets_in_env", False):
        out.append("secrets-in-env")
    return out
