from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.text import Text

from picsellia_tui.engine.logtext import (
    MASK,
    mask_secrets,
    sanitize,
    secret_masker,
    strip_ansi,
)

SGR_RX = re.compile(r"\x1b\[[0-9;:]*m")
BAD_RX = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")

# Text built from pieces a container may print, plus any character at all.
PIECES = st.sampled_from(
    [
        "\x1b[31m",
        "\x1b[0m",
        "\x1b[1;38;5;200m",
        "\x1b[38:2::1:2:3m",
        "\x1b[2J",
        "\x1b[H",
        "\x1b[10;20H",
        "\x1b[K",
        "\x1b[?25l",
        "\x1b[>4m",
        "\x1b[99999m",
        "\x1b]0;title\x07",
        "\x1b]8;;http://x\x1b\\",
        "\x1b]2;unterminated",
        "\x1bPq#0;2;0;0;0\x1b\\",
        "\x1b_apc\x1b\\",
        "\x1b^pm\x9c",
        "\x1b(B",
        "\x1b7",
        "\x1bc",
        "\x1b",
        "\x9b2J",
        "\x9d0;t\x07",
        "\x90dcs\x9c",
        "\r",
        "\b",
        "\t",
        "\x00",
        "\x07",
        "\x7f",
        "\x85",
        "\u2028",
        "\u202e",
        "\ud800",
        "abc",
        "50%",
        " ",
        "é漢",
    ]
)
ANY = st.lists(
    st.one_of(PIECES, st.text(st.characters(exclude_categories=()), max_size=5)), max_size=30
).map("".join)


def assert_safe(out: str, colors: bool) -> None:
    rest = SGR_RX.sub("", out) if colors else out
    assert "\x1b" not in rest, repr(out)
    assert not BAD_RX.search(rest), repr(out)
    assert "\t" not in out


@settings(max_examples=500)
@given(ANY)
def test_sanitize_is_total_and_safe(text: str) -> None:
    out = sanitize(text)
    assert_safe(out, colors=True)
    plain = strip_ansi(text)
    assert_safe(plain, colors=False)
    # Rich sees only colours, and shows the same characters strip_ansi gives.
    rendered = Text.from_ansi(out)
    assert rendered.plain == plain
    assert "\n" not in rendered.plain


@given(ANY)
def test_sanitize_is_idempotent(text: str) -> None:
    once = sanitize(text)
    assert sanitize(once) == once
    assert strip_ansi(strip_ansi(text)) == strip_ansi(text)


@pytest.mark.parametrize(
    ("raw", "colored", "plain"),
    [
        ("plain text", "plain text", "plain text"),
        ("a\rb\rc", "c", "c"),
        ("abc\r", "abc", "abc"),
        (" 10%|#    |\r 50%|###  |\r100%|#####|\r", "100%|#####|", "100%|#####|"),
        ("50%\r\x1b[K", "50%", "50%"),
        ("\x1b[31m50%\r\x1b[32m100%", "\x1b[31m\x1b[32m100%", "100%"),
        ("ab\bc", "ac", "ac"),
        ("\bx", "x", "x"),
        ("ab\x1b[1m\b\bc", "\x1b[1mc", "c"),
        ("a\tb", "a       b", "a       b"),
        ("\x1b[31mab\tc", "\x1b[31mab      c", "ab      c"),
        ("\x1b[31mred\x1b[0m", "\x1b[31mred\x1b[0m", "red"),
        ("\x1b[2J\x1b[1;1Hhome", "home", "home"),
        ("\x1b]0;pwned\x07title", "title", "title"),
        ("\x1b]8;;https://x.y\x1b\\link\x1b]8;;\x1b\\", "link", "link"),
        ("\x1bPqsixel\x1b\\after", "after", "after"),
        ("\x1b_apc\x1b\\x", "x", "x"),
        ("bell\x07nul\x00del\x7f", "bellnuldel", "bellnuldel"),
        ("c1\x85\x9b2Jx", "c1x", "c1x"),
        ("\x1b(Bcharset\x1b7", "charset", "charset"),
        ("\x1b[99999mhuge", "huge", "huge"),
        ("\x1b[?1049hscreen", "screen", "screen"),
        ("lone\ud800", "lone\ufffd", "lone\ufffd"),
        ("a\u2028b\u202ec", "a bc", "a bc"),
        ("\x1b]0;unterminated", "", ""),
        ("", "", ""),
    ],
)
def test_sanitize_examples(raw: str, colored: str, plain: str) -> None:
    assert sanitize(raw) == colored
    assert strip_ansi(raw) == plain
    assert sanitize(raw, keep_colors=False) == plain


def test_sanitize_is_fast() -> None:
    plain = "epoch 3 step 1200 loss=0.1234 acc=0.98 " * 3
    colored = "\x1b[32mINFO\x1b[0m \x1b[1mtrain\x1b[0m " + plain
    progress = "\r".join(f"{i:3d}%|{'#' * (i // 10):<10}|" for i in range(0, 101, 5))
    for line, budget_us in ((plain, 5), (colored, 30), (progress, 60)):
        n = 20_000
        t = time.perf_counter()
        for _ in range(n):
            sanitize(line)
        per_line = (time.perf_counter() - t) / n * 1e6
        # Generous budgets (CI machines are slow); measured ~10x lower.
        assert per_line < budget_us * 5, (line[:20], per_line)


def test_mask_secrets() -> None:
    assert mask_secrets("token=hunter22 again hunter22", ["hunter22"]) == (
        f"token={MASK} again {MASK}"
    )
    # Short values are not masked (they would hide too much).
    assert mask_secrets("a abc b", ["abc", ""]) == "a abc b"
    # The longer secret wins where they overlap.
    assert mask_secrets("key=abcd1234", ["abcd", "abcd1234"]) == f"key={MASK}"
    # Regex characters are literal.
    assert mask_secrets("p=a.b*c+d", ["a.b*c+d"]) == f"p={MASK}"
    assert mask_secrets("nothing", []) == "nothing"
    m = secret_masker(["s3cr3t", "xy"])
    assert m("s3cr3t xy") == f"{MASK} xy"
    assert secret_masker([])("same") == "same"


NO_BULLET = st.text(st.characters(exclude_characters="•"), max_size=30)


@given(
    st.text(st.characters(exclude_characters="•"), min_size=4, max_size=20), NO_BULLET, NO_BULLET
)
def test_masked_secret_never_survives(secret: str, before: str, after: str) -> None:
    out = mask_secrets(before + secret + after, [secret])
    assert secret not in out
    assert MASK in out
