"""Answers of the read commands (`jobs list/show/logs`, `models list/show`,
`processings list/show`), as fast as the workspace allows:

1. the engine serving the workspace, over its socket (`call`), when one runs;
2. else the light read path (storage/lightread.py: the standard sqlite3 module
   on the same schema), which imports nothing heavy;
3. else (no database yet, another schema revision, bundled processings changed
   on disk since the last sync) an engine of this process's own, which creates,
   migrates or syncs the workspace first.

All three give the same JSON data (the views' dump), so a command prints the same
whichever answered. `PICSELLIA_READ_PATH=engine` skips the first two (a
troubleshooting switch; the tests compare the paths with it).
"""

from __future__ import annotations

import os
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from picsellia_tui.cli.errors import fail
from picsellia_tui.cli.state import STATE, with_engine

if TYPE_CHECKING:
    from collections.abc import Callable

    from picsellia_tui.engine.core import Engine
    from picsellia_tui.storage.lightread import LightReader

Call = tuple[str, dict[str, Any]]
FREE_FORM = {"parameters", "metrics"}


def read(
    calls: list[Call], light: Callable[[LightReader], list[Any]], *, catalog: bool = False
) -> list[Any]:
    """The results of engine `calls` (method, keyword arguments) as JSON data;
    `light` answers the same from a LightReader. `catalog`: the answer depends
    on the bundled processings being synced."""
    if os.environ.get("PICSELLIA_READ_PATH") != "engine":
        from picsellia_tui.engine.lightconfig import light_settings

        where = light_settings(STATE["config"], STATE["overrides"])
        if where is not None:
            served = _served(where.database, where.executor, calls)
            if served is not None:
                return served
            answer = _light(where.database, where.processings_dir if catalog else None, light)
            if answer is not None:
                return answer
    return _own_engine(calls)


def _served(database: Any, executor: str, calls: list[Call]) -> list[Any] | None:
    from picsellia_tui.engine.control_client import Unavailable, request

    try:
        for event in request(database, executor, "call", calls=[[m, a] for m, a in calls]):
            if event.get("event") == "error":
                fail(str(event.get("message")), int(event.get("code", 1)))
            if event.get("event") == "final":
                results: list[Any] = event["results"]
                return results
    except Unavailable:
        return None
    except ConnectionError:
        return None  # the engine left mid-answer: a read is safe to ask again
    return None


def _light(
    database: Any, processings_dir: Any, light: Callable[[LightReader], list[Any]]
) -> list[Any] | None:
    from picsellia_tui.storage.lightread import LightError, LightReader, Unsupported

    try:
        with LightReader(database) as reader:
            if processings_dir is not None:
                reader.check_catalog(processings_dir)
            return light(reader)
    except Unsupported:
        return None
    except LightError as exc:
        fail(str(exc), exc.code)


def _own_engine(calls: list[Call]) -> list[Any]:
    async def go(e: Engine) -> list[Any]:
        out = []
        for method, args in calls:
            out.append(_dump(await getattr(e, method)(**args)))
        return out

    return with_engine(go)


def _dump(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_dump(v) for v in value]
    return value


def ns(data: Any) -> Any:
    """JSON data as attribute namespaces for the text output; ISO times (keys
    ending in `_at`) back to datetimes; free-form mappings (a job's parameters,
    a version's metrics) stay dicts."""
    if isinstance(data, list):
        return [ns(v) for v in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key.endswith("_at") and isinstance(value, str):
            out[key] = datetime.fromisoformat(value)
        elif key in FREE_FORM and isinstance(value, dict):
            out[key] = value
        else:
            out[key] = ns(value)
    return SimpleNamespace(**out)
