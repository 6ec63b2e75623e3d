"""The few settings a light command needs (where the database is, which executor,
where the bundled processings are), resolved as engine.config would resolve
them but without loading the settings: pydantic and pydantic-settings alone cost
about 0.3 s, more than the whole answer of a read command.

Same lookup: `--config`, then $PICSELLIA_TUI_CONFIG, then the user config dir;
`PICSELLIA_TUI_<KEY>` wins over the file; command-line overrides win over both.
A test checks that both agree. When in doubt (a config that does not parse, a
value of the wrong type) the answer is None and the caller loads the real
settings, which report the problem in one line.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

APP = "picsellia-tui"  # as engine.config.APP (that module imports pydantic)
# As engine.config.BUNDLED_PROCESSINGS: this file sits beside config.py.
BUNDLED_PROCESSINGS = Path(__file__).resolve().parents[2] / "processings"


@dataclass(frozen=True)
class LightSettings:
    data_dir: Path
    database: Path
    executor: str
    processings_dir: Path


def light_settings(config: Path | None, overrides: dict[str, Any]) -> LightSettings | None:
    try:
        file_values: dict[str, Any] = {}
        path = config
        if path is None and os.environ.get("PICSELLIA_TUI_CONFIG"):
            path = Path(os.environ["PICSELLIA_TUI_CONFIG"]).expanduser()
        if path is not None and not path.is_file():
            return None  # the real settings will say what is wrong
        path = path or Path(platformdirs.user_config_dir(APP)) / "config.toml"
        if path.is_file():
            with path.open("rb") as f:
                file_values = tomllib.load(f)

        def value(key: str) -> Any:
            if key in overrides:
                return overrides[key]
            env = os.environ.get(f"PICSELLIA_TUI_{key.upper()}")
            if env is not None:
                return env
            return file_values.get(key)

        def path_of(key: str) -> Path | None:
            v = value(key)
            if v is None:
                return None
            if not isinstance(v, str | os.PathLike):
                raise TypeError(key)
            return Path(v).expanduser()  # as engine.config: "~/ws" is under $HOME

        executor = str(value("executor") or "docker")
        if executor not in ("docker", "process"):
            return None
        data = path_of("data_dir") or Path(platformdirs.user_data_dir(APP))
        return LightSettings(
            data_dir=data,
            database=path_of("database") or data / "picsellia.db",
            executor=executor,
            processings_dir=path_of("processings_dir") or BUNDLED_PROCESSINGS,
        )
    except (OSError, ValueError, TypeError):
        return None
