"""Parameter values checked against their specs: one place for the typing rules."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from picsellia_tui.storage.domain import ParamSpec

MASK = "••••••"
MIN_SECRET_CHARS = 8
_TRUE = {"true", "1", "yes", "on", "y"}
_FALSE = {"false", "0", "no", "off", "n"}
# C0 controls but tab and newline, DEL, C1, lone surrogates.
_UNSAFE_RX = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


class ParameterError(ValueError):
    """A parameter value that does not fit its spec; `field` names the parameter."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"parameter {_show(field)}: {reason}")
        self.field = field
        self.reason = reason


def coerce_value(spec: ParamSpec, value: Any) -> Any:
    """Return `value` as the spec's type, or raise ParameterError.

    Strings are accepted for every type (they come from a form or a command line).
    """
    name = spec.name
    if spec.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ParameterError(name, f"{_show(value)} is not a boolean (true/false)")
    if spec.type in ("int", "float"):
        num: int | float
        try:
            if isinstance(value, bool):
                raise ValueError
            if spec.type == "int":
                if isinstance(value, float):
                    if not value.is_integer():
                        raise ValueError
                    num = int(value)
                else:
                    num = int(str(value).strip())
            else:
                num = float(str(value).strip()) if isinstance(value, str) else float(value)
                if not math.isfinite(num):
                    raise ValueError
        except (TypeError, ValueError, OverflowError):
            kind = "an integer" if spec.type == "int" else "a finite number"
            raise ParameterError(name, f"{_show(value)} is not {kind}") from None
        if spec.min is not None and num < spec.min:
            raise ParameterError(name, f"{_show(num)} is below the minimum {_fmt(spec.min)}")
        if spec.max is not None and num > spec.max:
            raise ParameterError(name, f"{_show(num)} is above the maximum {_fmt(spec.max)}")
        return num
    if not isinstance(value, str):
        if spec.type == "choice" and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        else:
            raise ParameterError(name, f"{_show(value)} is not a string")
    if "\x00" in value:
        raise ParameterError(name, "contains a NUL byte")
    if len(value) > 4096:
        raise ParameterError(name, "is longer than 4096 characters")
    bad = _UNSAFE_RX.search(value)
    if bad:
        # Shown in tables and the TUI (a title change, a screen clear...), passed as
        # environment variables (a lone surrogate cannot be encoded): refused.
        what = (
            "an invalid character" if "\ud800" <= bad.group() <= "\udfff" else "a control character"
        )
        raise ParameterError(name, f"contains {what} ({bad.group()!r})")
    if spec.secret and ("\n" in value or "\r" in value):
        raise ParameterError(name, "a secret is one line")
    if spec.secret and len(value) < MIN_SECRET_CHARS:
        # Logs are masked by value: 'abc' would mask every 'abc' of the log and
        # still say which it was; a short secret is guessed anyway.
        raise ParameterError(name, f"a secret needs at least {MIN_SECRET_CHARS} characters")
    if spec.type == "choice":
        assert spec.choices is not None
        if value not in spec.choices:
            raise ParameterError(
                name, f"{_show(value)} is not one of {_show_choices(spec.choices)}"
            )
    return value


def _show(value: Any, limit: int = 40) -> str:
    """repr(value), cut short: a hostile value never floods the message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show_choices(choices: list[str]) -> str:
    text = ", ".join(choices)
    return text if len(text) <= 200 else text[:199] + "…"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def resolve_parameters(specs: list[ParamSpec], given: Mapping[str, Any]) -> dict[str, Any]:
    """Apply defaults, check types, ranges, choices and required ones.

    Unknown names are refused too: a typo must not silently run with a default.
    """
    known = {s.name: s for s in specs}
    for key in given:
        if key not in known:
            names = ", ".join(known) or "none"
            raise ParameterError(key, f"unknown parameter (this processing takes: {names})")
    out: dict[str, Any] = {}
    for spec in specs:
        value = resolve_value(spec, given.get(spec.name))
        if value is not None:
            out[spec.name] = value
    return out


def resolve_value(spec: ParamSpec, raw: Any) -> Any:
    """One parameter's value from what was given for it (None: nothing): its default
    when left empty, checked against the spec; None when it stays unset. Raises
    ParameterError. The engine applies it to a launch, the launch form as it is typed.
    """
    if raw is None or (isinstance(raw, str) and raw == "" and (spec.type != "str" or spec.secret)):
        raw = spec.default
    if raw is None or (spec.required and isinstance(raw, str) and raw == ""):
        if spec.required:
            raise ParameterError(spec.name, "is required")
        return None
    return coerce_value(spec, raw)


def split_secrets(
    specs: list[ParamSpec], values: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """(plain values, secret values). Secrets never go to the database or context.json."""
    secret_names = {s.name for s in specs if s.secret}
    plain = {k: v for k, v in values.items() if k not in secret_names}
    secrets = {k: str(v) for k, v in values.items() if k in secret_names}
    return plain, secrets


def masked(specs: list[ParamSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    secret_names = {s.name for s in specs if s.secret}
    return {k: (MASK if k in secret_names else v) for k, v in values.items()}


def secret_env_name(param_name: str) -> str:
    """Secret parameters reach the container as this environment variable only."""
    return param_name.upper()
