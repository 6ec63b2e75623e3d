"""Commands handed to the engine that already serves this workspace (`engine
serve`, the app), over its socket: no engine start-up in the command."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from picsellia_tui.cli.context import STATE
from picsellia_tui.cli.errors import fail


def on_running_engine(op: str, started: Callable[[Any], None], **args: Any) -> Any:
    """Run `op` on the engine serving this workspace, printing the log it streams;
    the final answer (namespaces), or None when no engine serves it here."""
    from types import SimpleNamespace

    from picsellia_tui.engine.control_client import Unavailable, database_hint, request
    from picsellia_tui.engine.logtext import sanitize

    hint = database_hint(STATE["config"], STATE["overrides"])
    if hint is None:
        return None
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    try:
        for event in request(*hint, op, **args):
            kind = event.pop("event", None)
            if kind == "error":
                fail(str(event.get("message")), int(event.get("code", 1)))
            elif kind == "started":
                started(SimpleNamespace(**event["item"]))
            elif kind == "log":
                for text in event["lines"]:
                    print(sanitize(text, keep_colors=color))
                sys.stdout.flush()
            elif kind == "final":
                return SimpleNamespace(**{k: SimpleNamespace(**v) for k, v in event.items()})
    except Unavailable:
        return None  # raised before any answer: nothing was done
    except ConnectionError as exc:
        fail(f"lost the engine while following its answer: {exc}")
    return None
