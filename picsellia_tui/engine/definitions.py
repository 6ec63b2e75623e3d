"""`processing.toml` files: parsed with pydantic, errors as file: key: reason."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from picsellia_tui.engine.errors import DefinitionError
from picsellia_tui.storage.domain import ProcessingDefinition

DEFINITION_FILE = "processing.toml"
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def _loc(loc: tuple[int | str, ...], data: object) -> str:
    """('parameters', 1, 'type') -> 'parameters[1].type' (or the parameter's name)."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            name = None
            if isinstance(node, list) and 0 <= part < len(node) and isinstance(node[part], dict):
                name = node[part].get("name")
            out += (
                f"[{name}]" if isinstance(name, str) and _PLAIN_KEY.fullmatch(name) else f"[{part}]"
            )
        else:
            # A hostile key (control characters, a screenful) is quoted, never echoed raw.
            shown = part if _PLAIN_KEY.fullmatch(part) else repr(part[:40])
            out += f".{shown}" if out else shown
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return out


def parse_definition(text: str, file: str) -> ProcessingDefinition:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(file, "", f"not valid TOML ({exc})") from None
    except RecursionError:  # x = [[[[... nested thousands deep
        raise DefinitionError(file, "", "nested too deeply") from None
    return validate_definition(data, file)


def validate_definition(data: dict[str, Any], file: str) -> ProcessingDefinition:
    """The definition, or a DefinitionError naming the file, the key and why."""
    try:
        return ProcessingDefinition.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _loc(tuple(err["loc"]), data)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "is required"
        extra = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
        raise DefinitionError(file, key, msg + extra) from None


def load_definition(folder: Path) -> ProcessingDefinition:
    path = folder / DEFINITION_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DefinitionError(str(path), "", "no processing.toml in this folder") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(str(path), "", f"cannot be read ({exc})") from None
    return parse_definition(text, str(path))


def definition_hash(defn: ProcessingDefinition) -> str:
    blob = json.dumps(defn.model_dump(mode="json"), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def bundled_folders(root: Path) -> list[Path]:
    """Processing folders under root; `_lib`, `_template` and friends are not."""
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and (p / DEFINITION_FILE).is_file()
    )
