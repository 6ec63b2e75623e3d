"""Prints the engine's diagnosis for `picsellia-tui doctor`."""

from __future__ import annotations

from picsellia_tui.cli.output import emit_json
from picsellia_tui.engine.config import Settings
from picsellia_tui.engine.doctor import diagnose


def run_doctor(settings: Settings, as_json: bool = False) -> bool:
    report = diagnose(settings)
    if as_json:
        emit_json([c.__dict__ for c in report.checks])
        return report.ok
    for c in report.checks:
        print(f"{'ok ' if c.ok else 'BAD'}  {c.name:<18} {c.detail}")
        if not c.ok and c.fix:
            print(f"     {'':<18} fix: {c.fix}")
    return report.ok
