"""`-p NAME=VALUE` arguments of the command line, with ways in for secrets that
other users cannot see.

A value on the command line is in `ps` for every local user while the command
runs. So a value may also be read from elsewhere:

- `NAME=@PATH`  the content of a file (one trailing newline dropped);
- `NAME=@-`     typed at a prompt that does not echo (or one line of stdin when
                it is not a terminal);
- `NAME=@env`   the environment variable PICSELLIA_TUI_SECRET_<NAME>;
- `NAME=@@...`  a value that really starts with '@' (one '@' dropped).

Standard library only: it runs before anything heavy is imported.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

ENV_PREFIX = "PICSELLIA_TUI_SECRET_"
MAX_FILE_VALUE = 64 * 1024


class ParamArgError(ValueError):
    """A -p argument that cannot be used; str() is the line to show (a usage error)."""


def parse_params(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParamArgError(f"-p {item[:40]!r}: write parameters as NAME=VALUE")
        out[key] = _value(key, val)
    return out


def _value(name: str, val: str) -> str:
    if not val.startswith("@"):
        return val
    if val.startswith("@@"):
        return val[1:]
    src = val[1:]
    if src == "env":
        var = ENV_PREFIX + name.upper()
        if var not in os.environ:
            raise ParamArgError(f"-p {name}=@env: the environment has no {var}")
        return os.environ[var]
    if src == "-":
        if sys.stdin.isatty():
            return getpass.getpass(f"{name}: ")
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    path = Path(src).expanduser()
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_VALUE + 1)
    except OSError as exc:
        raise ParamArgError(f"-p {name}=@{src}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_VALUE:
        raise ParamArgError(f"-p {name}=@{src}: larger than {MAX_FILE_VALUE // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ParamArgError(f"-p {name}=@{src}: not UTF-8 text") from None
    return text.removesuffix("\n").removesuffix("\r")
