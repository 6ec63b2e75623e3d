"""Making container text safe to show: control sequences never reach the terminal.

- :func:`sanitize` turns one raw log line into what a terminal would have left on
  screen, keeping only plain SGR colour codes (``ESC[...m``) when asked to.
- :func:`strip_ansi` is the plain text, for search and export.
- :func:`mask_secrets` hides secret values; the engine applies it before storing.

Every function here is total: any ``str`` in, a ``str`` out, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

MASK = "••••••"
MIN_SECRET_LEN = 4
TAB_SIZE = 8

# Plain SGR: ESC [ numbers separated by ; or : (38:2::r:g:b) then m. Numbers are
# capped at 3 digits so nothing downstream ever parses a huge integer.
_SGR_BODY = r"\[(?:[0-9]{1,3})?(?:[;:][0-9]{0,3}){0,31}m"
_SGR = r"\x1b" + _SGR_BODY
_STRING_END = r".*?(?:\x07|\x1b\\|\x9c|\Z)"  # BEL, ST, 8-bit ST or end of line
# Every branch starts with a literal so the regex engine skips plain text quickly.
_ESC_TAIL = (
    r"(?:\[[0-?]*[ -/]*[@-~]"  # CSI: cursor moves, erase, modes, anything
    r"|[\]PX^_]"
    + _STRING_END  # OSC, DCS, SOS, PM, APC strings
    + r"|[ -/]*[0-~]"  # nF/Fp/Fe/Fs escapes: ESC ( B, ESC 7, ESC c, ESC =, ...
    r")?"  # or a lone / truncated ESC
)
_C1_SEQUENCES = (
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
    + "".join(f"|\\x{c:02x}{_STRING_END}" for c in (0x90, 0x98, 0x9D, 0x9E, 0x9F))
)
_SGR_RX = re.compile(_SGR)
_ALL_SEQ_RX = re.compile(r"\x1b" + _ESC_TAIL + _C1_SEQUENCES, re.DOTALL)
_NON_SGR_SEQ_RX = re.compile(r"\x1b(?!" + _SGR_BODY + ")" + _ESC_TAIL + _C1_SEQUENCES, re.DOTALL)
# Anything that needs work: C0, DEL, C1, lone surrogates, line/paragraph
# separators (they would split the line) and bidi overrides (they reorder text).
_NEEDS_WORK_RX = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_ODD_UNICODE_RX = re.compile("[\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROLS_RX = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_CONTROLS_BUT_ESC_RX = re.compile("[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f-\x9f]")
_SGR_SPLIT_RX = re.compile(f"({_SGR})")


def sanitize(text: str, keep_colors: bool = True) -> str:
    """What a terminal would leave on screen for one line, minus anything unsafe.

    Carriage returns keep the last state (``a\\rb\\rc`` -> ``c``; a trailing
    ``\\r`` is ignored), backspaces erase, tabs are expanded, and every control
    sequence and control character is removed except plain SGR colours when
    `keep_colors`. Lone surrogates become U+FFFD, line separators a space, bidi
    overrides are dropped.
    """
    try:
        return _sanitize(text, keep_colors)
    except Exception:  # pragma: no cover - belt and braces: never break a render
        return _CONTROLS_RX.sub("", _ALL_SEQ_RX.sub("", str(text))).expandtabs(TAB_SIZE)


def strip_ansi(text: str) -> str:
    """Plain text (no colours, no controls) as :func:`sanitize` would show it."""
    return sanitize(text, keep_colors=False)


def _sanitize(text: str, keep_colors: bool) -> str:
    if not _NEEDS_WORK_RX.search(text):
        return text
    text = (_NON_SGR_SEQ_RX if keep_colors else _ALL_SEQ_RX).sub("", text)
    if "\r" in text:
        text = _last_state(text, keep_colors)
    if "\b" in text:
        text = _apply_backspaces(text, keep_colors)
    # The only ESCs left after the sequence pass start plain SGR codes.
    text = (_CONTROLS_BUT_ESC_RX if keep_colors else _CONTROLS_RX).sub("", text)
    if "\t" in text:
        text = _expand_tabs(text)
    if not text.isascii():
        text = _ODD_UNICODE_RX.sub(_odd_unicode, text)
    return text


def _odd_unicode(m: re.Match[str]) -> str:
    c = m.group()
    if c in "\u2028\u2029":
        return " "
    return "\ufffd" if "\ud800" <= c <= "\udfff" else ""


def _visible(segment: str, keep_colors: bool) -> str:
    return _SGR_RX.sub("", segment) if keep_colors and "\x1b" in segment else segment


def _last_state(text: str, keep_colors: bool) -> str:
    """The last carriage-return segment with something visible in it; the colour
    codes of the segments before it are carried over so its colour is right."""
    segments = text.rstrip("\r").split("\r")
    for k in range(len(segments) - 1, -1, -1):
        if _CONTROLS_RX.sub("", _visible(segments[k], keep_colors)):
            break
    else:
        k = len(segments) - 1
    chosen = segments[k]
    if keep_colors and k:
        before = "".join(_SGR_RX.findall("".join(segments[:k])))
        chosen = before + chosen
    return chosen


def _tokens(text: str, keep_colors: bool) -> list[str]:
    """Text split into SGR sequences and plain runs (SGR kept only with colours)."""
    return [t for t in _SGR_SPLIT_RX.split(text) if t] if keep_colors else [text]


def _apply_backspaces(text: str, keep_colors: bool) -> str:
    out: list[str] = []  # single characters and whole SGR sequences
    visible: list[int] = []  # positions in `out` of visible characters
    for tok in _tokens(text, keep_colors):
        if tok.startswith("\x1b"):
            out.append(tok)
            continue
        for ch in tok:
            if ch == "\b":
                if visible:
                    out[visible.pop()] = ""
            else:
                visible.append(len(out))
                out.append(ch)
    return "".join(out)


def _expand_tabs(text: str) -> str:
    if "\x1b" not in text:
        return text.expandtabs(TAB_SIZE)
    out: list[str] = []
    col = 0
    for tok in _tokens(text, True):
        if tok.startswith("\x1b"):
            out.append(tok)
            continue
        for j, part in enumerate(tok.split("\t")):
            if j:
                pad = TAB_SIZE - col % TAB_SIZE
                out.append(" " * pad)
                col += pad
            out.append(part)
            col += len(part)
    return "".join(out)


# --------------------------------------------------------------------------- secrets


@lru_cache(maxsize=64)
def _secret_rx(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    values = sorted({s for s in secrets if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)
    if not values:
        return None
    return re.compile("|".join(re.escape(v) for v in values))


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret value (4 characters or more) by
    ``••••••``. Longer secrets are matched first. For many lines, prefer
    :func:`secret_masker` (compiles once)."""
    if not secrets or not text:
        return text
    rx = _secret_rx(tuple(sorted(str(s) for s in secrets if s)))
    return rx.sub(MASK, text) if rx is not None else text


def secret_masker(secrets: Iterable[str]) -> Callable[[str], str]:
    """A reusable ``mask_secrets`` for one run (compiles the pattern once)."""
    rx = _secret_rx(tuple(sorted(str(s) for s in secrets if s)))
    if rx is None:
        return lambda text: text
    return lambda text: rx.sub(MASK, text)


def secret_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """The compiled pattern `secret_masker` uses (None when nothing to mask)."""
    return _secret_rx(tuple(sorted(str(s) for s in secrets if s)))


def mask_across(a: str, b: str, rx: re.Pattern[str]) -> tuple[str, str, int]:
    """Mask two consecutive pieces of one line as if joined (a long line is cut
    into pieces, maybe in the middle of a secret). Returns the masked pieces, each
    mask in the piece where its secret starts, and how many characters at the start
    of `b` belonged to a secret masked in `a`."""
    joined = a + b
    cut = len(a)
    out_a: list[str] = []
    out_b: list[str] = []
    pos = 0
    carry = 0

    def keep(start: int, end: int) -> None:
        if start < cut:
            out_a.append(joined[start : min(end, cut)])
        if end > cut:
            out_b.append(joined[max(start, cut) : end])

    for m in rx.finditer(joined):
        start, end = m.span()
        keep(pos, start)
        (out_a if start < cut else out_b).append(MASK)
        if start < cut < end:
            carry = end - cut
        pos = end
    keep(pos, len(joined))
    return "".join(out_a), "".join(out_b), carry
