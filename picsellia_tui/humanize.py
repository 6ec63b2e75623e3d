"""Values as people read them (times, durations, sizes), the same in the app and
on the command line. Plain functions, no dependencies."""

from __future__ import annotations

from datetime import UTC, datetime


def when(dt: datetime | None) -> str:
    if dt is None:
        return "-"
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def first_line(value: BaseException | str) -> str:
    """An error (or a text) as the one line a person reads first: its first
    non-blank line; for an error without a message, its type's name."""
    text = str(value).strip()
    if text:
        return text.splitlines()[0].strip()
    return type(value).__name__ if isinstance(value, BaseException) else ""
