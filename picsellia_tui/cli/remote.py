"""Commands handed to the engine serving the workspace, over its socket: the
background engine (started here when none serves: engine/autostart.py), `engine
serve` or an app's own engine. No engine start-up in the command itself, and the
runs it starts are supervised whether or not the command stays."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from picsellia_tui.cli.errors import fail
from picsellia_tui.cli.state import STATE


def root_args() -> list[str]:
    """This command's root options, for the background engine it may start."""
    out = []
    if STATE["config"] is not None:
        out += ["--config", str(STATE["config"])]
    for key, flag in (("data_dir", "--data-dir"), ("executor", "--executor")):
        if key in STATE["overrides"]:
            out += [flag, str(STATE["overrides"][key])]
    return out


def engine_events(op: str, **args: Any) -> Iterator[dict[str, Any]] | None:
    """The events answering `op` from the workspace's engine, started in the
    background when none serves it; None when no engine can be reached (the
    caller then runs one of its own, as before; the reason is printed)."""
    from picsellia_tui.engine.autostart import StartFailed, ensure_engine
    from picsellia_tui.engine.control_client import (
        Unavailable,
        Untrusted,
        client_settings_key,
        request,
    )
    from picsellia_tui.engine.lightconfig import light_settings

    where = light_settings(STATE["config"], STATE["overrides"])
    if where is None:
        return None
    for attempt in (1, 2):
        try:
            ensure_engine(where.database, where.data_dir, root_args())
        except StartFailed as exc:
            print(f"warning: no background engine ({exc}); running one here", file=sys.stderr)
            return None
        key = client_settings_key(STATE["config"], STATE["overrides"])
        events = request(where.database, where.executor, op, settings_key=key, **args)
        try:
            first = next(events)
        except Untrusted as exc:  # nothing was sent; an engine of our own does the work
            print(f"warning: {exc}", file=sys.stderr)
            return None
        except Unavailable as exc:
            if "this engine serves" in str(exc) or "other settings" in str(exc):
                return None  # an engine of other settings serves this database
            # The engine left as we came (its idle exit): once more, with a new one.
            if attempt == 1:
                continue
            return None
        except ConnectionError:
            if attempt == 1:
                continue
            return None

        return _chain(first, events)
    return None


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def on_running_engine(op: str, started: Callable[[Any], None], **args: Any) -> Any:
    """Run `op` on the engine serving this workspace, printing the log it streams;
    the final answer (namespaces), or None when no engine can serve it here."""
    from types import SimpleNamespace

    from picsellia_tui.engine.logtext import sanitize

    events = engine_events(op, **args)
    if events is None:
        return None
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    try:
        for event in events:
            kind = event.pop("event", None)
            if kind in ("error", "refused"):
                fail(str(event.get("message")), int(event.get("code", 1)))
            elif kind == "started":
                started(SimpleNamespace(**event["item"]))
            elif kind == "log":
                for text in event["lines"]:
                    print(sanitize(text, keep_colors=color))
                sys.stdout.flush()
            elif kind == "final":
                return SimpleNamespace(
                    **{
                        k: SimpleNamespace(**v) if isinstance(v, dict) else v
                        for k, v in event.items()
                    }
                )
    except ConnectionError as exc:
        fail(f"lost the engine while following its answer: {exc}")
    return None


def follow_on_engine(job_id: int, attempt: int | None, tail: int | None, timestamps: bool) -> Any:
    """`jobs logs -f` through the workspace's engine: print the run's log while it
    is active; the final run (a namespace), or None when no engine can serve."""
    from types import SimpleNamespace

    from picsellia_tui.engine.logtext import sanitize
    from picsellia_tui.storage.logfile.record import format_ts

    events = engine_events("follow", job_id=job_id, attempt=attempt, tail=tail)
    if events is None:
        return None
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    try:
        for event in events:
            kind = event.get("event")
            if kind in ("error", "refused"):
                fail(str(event.get("message")), int(event.get("code", 1)))
            elif kind == "records":
                for ts_ns, text in event["records"]:
                    text = sanitize(text, keep_colors=color)
                    print(f"{format_ts(ts_ns)} {text}" if timestamps else text)
                sys.stdout.flush()
            elif kind == "final":
                return SimpleNamespace(**event["run"])
    except ConnectionError as exc:
        fail(f"lost the engine while following the log: {exc}")
    return None
