from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from picsellia_tui.engine.executors.base import LogLine
from picsellia_tui.storage.logfile.reader import LogReader
from picsellia_tui.storage.logfile.record import (
    LogRecord,
    basic_clean,
    decode_record,
    encode_record,
    format_ts,
    index_path,
)
from picsellia_tui.storage.logfile.search import error_tail, export, search
from picsellia_tui.storage.logfile.writer import LogWriter

# Any code point, with surrogates and the characters the format escapes made common.
ANY_CHAR = st.one_of(
    st.characters(exclude_categories=()),
    st.characters(categories=["Cs"]),
    st.sampled_from("\\\n\r\x00\x1bu0123456789abcdef"),
)
ANY_TEXT = st.text(ANY_CHAR, max_size=200)


def L(ts: int, text: str, stream: str = "stdout") -> LogLine:
    return LogLine(ts, stream, text)  # type: ignore[arg-type]


def texts(reader: LogReader) -> list[str]:
    return [r.text for r in reader.records(0)]


# ------------------------------------------------------------------ codec / round trip


@given(ts=st.integers(0, 2**63 - 1), stream=st.sampled_from(["stdout", "stderr"]), text=ANY_TEXT)
def test_record_codec_round_trips(ts: int, stream: str, text: str) -> None:
    raw = encode_record(ts, stream, text)
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    raw.decode("utf-8")  # always valid UTF-8
    assert decode_record(raw) == LogRecord(ts, stream, text)  # type: ignore[arg-type]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.tuples(st.sampled_from(["stdout", "stderr"]), ANY_TEXT), max_size=30))
def test_file_round_trips_any_text(tmp_path: Path, lines: list[tuple[str, str]]) -> None:
    path = tmp_path / f"rt-{os.urandom(4).hex()}.log"
    with LogWriter(path) as w:
        w.append(L(i + 1, t, s) for i, (s, t) in enumerate(lines))
    reader = LogReader(path)
    assert [(r.stream, r.text) for r in reader.records(0)] == lines
    assert len(reader) == len(lines)


def test_special_characters(tmp_path: Path) -> None:
    path = tmp_path / "r.log"
    odd = [
        "nul\x00byte",
        "cr\rprogress\r",
        "back\\slash \\n not newline \\u0041",
        "multi\nline",
        "lone \ud800 surrogate \udfff and pair \ud83d\ude00",
        "\x1b]0;title\x07\x1b[2J\x1b[31mred\x1b[0m",
        "\ufffd replacement",
        "",
        " leading space",
        "trailing\\",
    ]
    with LogWriter(path) as w:
        assert w.append(L(i, t) for i, t in enumerate(odd)) == len(odd)
    assert texts(LogReader(path)) == odd
    data = path.read_bytes()
    data.decode("utf-8")
    assert data.count(b"\n") == len(odd)


def test_one_megabyte_line(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    big = "x" * (1024 * 1024) + "\\end"
    with LogWriter(path) as w:
        w.append([L(1, "before"), L(2, big, "stderr"), L(3, "after")])
    r = LogReader(path)
    assert r.record(1) == LogRecord(2, "stderr", big)
    assert r.record(2).text == "after"
    assert search(r, "after", 0) == 2


def test_missing_file_is_empty_and_appears_later(tmp_path: Path) -> None:
    path = tmp_path / "later.log"
    r = LogReader(path)
    assert len(r) == 0 and r.tail(10) == [] and r.records(0, 5) == []
    assert search(r, "x", 0) is None
    with LogWriter(path) as w:
        w.append([L(1, "hello")])
        assert r.refresh() == 1
        assert r.record(0).text == "hello"
        assert r.record(-1).text == "hello"
        with pytest.raises(IndexError):
            r.record(1)


# ------------------------------------------------------------------ reader api


@pytest.fixture
def hundred(tmp_path: Path) -> Path:
    path = tmp_path / "h.log"
    with LogWriter(path) as w:
        w.append(
            L(
                1000 + i,
                f"line {i} {'ERROR' if i % 10 == 3 else 'ok'}",
                "stderr" if i % 2 else "stdout",
            )
            for i in range(100)
        )
    return path


def test_records_tail_iter(hundred: Path) -> None:
    r = LogReader(hundred)
    assert len(r) == 100
    assert [x.text for x in r.records(10, 13)] == ["line 10 ok", "line 11 ok", "line 12 ok"]
    assert r.records(98, 500)[-1].text == "line 99 ok"
    assert [x.text for x in r.tail(2)] == ["line 98 ok", "line 99 ok"]
    assert len(list(r.iter_from(0))) == 100
    assert next(r.iter_from(42)).text == "line 42 ok"
    assert r.record(5) == LogRecord(1005, "stderr", "line 5 ok")


def test_search(hundred: Path) -> None:
    r = LogReader(hundred)
    assert search(r, "error", 0) == 3
    assert search(r, "error", 4) == 13
    assert search(r, "error", 13) == 13
    assert search(r, "error", 99, backwards=True) == 93
    assert search(r, "error", 92, backwards=True) == 83
    assert search(r, "error", 2, backwards=True) is None
    assert search(r, "error", 0, case_sensitive=True) is None
    assert search(r, "ERROR", 0, case_sensitive=True) == 3
    assert search(r, r"line \d5 ", 0, regex=True) == 15
    assert search(r, "nothing", 0) is None
    assert search(r, "line 1 ", 0) == 1  # literal, not a regex
    assert search(r, "line.1", 0) is None
    assert search(r, "", 0) is None
    assert search(r, "x", 1000) is None


def test_search_sees_text_not_escape_codes(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    with LogWriter(path) as w:
        w.append(
            [L(1, "plain"), L(2, "\x1b[31mfoo\x1b[0mbar"), L(3, "a\\b"), L(4, "50%\r100% done")]
        )
    r = LogReader(path)
    assert search(r, "foobar", 0) == 1
    assert search(r, "a\\b", 0) == 2
    assert search(r, "100% done", 0) == 3
    assert search(r, "50%", 0) is None  # overwritten by the carriage return


def test_search_across_many_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from picsellia_tui.storage.logfile import record as lf

    monkeypatch.setattr(lf, "CHUNK", 256)
    path = tmp_path / "m.log"
    with LogWriter(path) as w:
        w.append(L(i, f"row {i:05d}") for i in range(2000))
    r = LogReader(path)
    assert search(r, "row 01500", 0) == 1500
    assert search(r, "row 00010", 1999, backwards=True) == 10
    assert search(r, "ROW 0199", 0) == 1990
    assert len(r.records(0)) == 2000
    assert len(list(r.iter_from(0))) == 2000


def test_export(hundred: Path, tmp_path: Path) -> None:
    r = LogReader(hundred)
    dest = tmp_path / "out" / "x.log"
    assert export(r, dest, timestamps=False) == 100
    lines = dest.read_text().splitlines()
    assert lines[0] == "line 0 ok" and len(lines) == 100
    export(r, dest, timestamps=True)
    first = dest.read_text().splitlines()[1]
    assert first == f"{format_ts(1001)} E line 1 ok"
    assert first.startswith("1970-01-01T00:00:00.000001001Z")


def test_export_is_sanitized(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    with LogWriter(path) as w:
        w.append([L(1, "\x1b]0;pwned\x07\x1b[31mred\x1b[0m\x00\x07 a\rb"), L(2, "x\ny")])
    dest = tmp_path / "s.txt"
    export(LogReader(path), dest)
    out = dest.read_text()
    assert "\x1b" not in out and "\x00" not in out and "\x07" not in out
    assert out == "b\nxy\n"


def test_basic_clean() -> None:
    assert basic_clean("\x1b[1;31mhi\x1b[0m") == "hi"
    assert basic_clean("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "link"
    assert basic_clean("a\rb\r") == "b"
    assert basic_clean("tab\tok\x9b2J") == "tab\tok"


def test_error_tail_prefers_traceback(tmp_path: Path) -> None:
    path = tmp_path / "e.log"
    with LogWriter(path) as w:
        w.append([L(1, "starting"), L(2, "warning: meh", "stderr")])
        w.append(L(3 + i, f"progress {i}") for i in range(100))
        tb = [
            "Traceback (most recent call last):",
            '  File "run.py", line 3, in <module>',
            "\x1b[31mValueError: bad model\x1b[0m",
        ]
        w.append(L(200 + i, t, "stderr") for i, t in enumerate(tb))
        w.append([L(300, "cleanup done")])
    summary = error_tail(path)
    assert summary.splitlines() == [tb[0], tb[1], "ValueError: bad model"]
    assert error_tail(path, n=1) == "ValueError: bad model"


def test_error_tail_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "e.log"
    with LogWriter(path) as w:
        w.append(L(i, f"l{i}", "stderr" if i % 2 else "stdout") for i in range(100))
        w.append([L(100, ""), L(101, "  ")])
    assert error_tail(path, n=3).splitlines() == ["l97", "l98", "l99"]
    assert error_tail(tmp_path / "none.log") == ""


# ------------------------------------------------------------------ crash safety


def _write(path: Path, n: int, ts0: int = 1) -> None:
    with LogWriter(path) as w:
        w.append(L(ts0 + i, f"line {i}") for i in range(n))


def test_torn_last_record_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "t.log"
    _write(path, 5)
    with open(path, "ab") as f:
        f.write(b"99 o half a li")  # SIGKILL mid-write: no newline, no index entry
    with LogWriter(path) as w:
        assert w.line_count == 5
        assert w.last_ts_ns == 5
        w.append([L(6, "line 5")])
    r = LogReader(path)
    assert texts(r) == [f"line {i}" for i in range(6)]


def test_data_written_index_not(tmp_path: Path) -> None:
    path = tmp_path / "t.log"
    _write(path, 5)
    idx = index_path(path)
    with open(path, "ab") as f:
        f.write(encode_record(6, "stderr", "complete, unindexed"))
    with open(idx, "ab") as f:
        f.write(b"\x01\x02\x03")  # torn index entry
    assert len(LogReader(path)) == 5  # readers only trust the index
    with LogWriter(path) as w:
        assert w.line_count == 6 and w.last_ts_ns == 6
    assert idx.stat().st_size == 6 * 8
    assert LogReader(path).record(5).text == "complete, unindexed"


@pytest.mark.parametrize("damage", ["missing", "empty", "garbage_tail", "too_long", "zeros"])
def test_index_rebuild(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "t.log"
    _write(path, 50)
    idx = index_path(path)
    good = idx.read_bytes()
    if damage == "missing":
        idx.unlink()
    elif damage == "empty":
        idx.write_bytes(b"")
    elif damage == "garbage_tail":
        idx.write_bytes(good[: 20 * 8] + (7).to_bytes(8, "little") * 3)
    elif damage == "too_long":
        idx.write_bytes(good + (10**9).to_bytes(8, "little"))
    elif damage == "zeros":
        idx.write_bytes(good[: 30 * 8] + b"\x00" * 8 * 20)
    with LogWriter(path) as w:
        assert w.line_count == 50
    assert idx.read_bytes() == good
    assert texts(LogReader(path)) == [f"line {i}" for i in range(50)]


def test_reader_without_index_scans_data(tmp_path: Path) -> None:
    path = tmp_path / "t.log"
    _write(path, 10)
    index_path(path).unlink()
    r = LogReader(path)
    assert len(r) == 10 and r.record(9).text == "line 9"


# ------------------------------------------------------------------ resume dedupe


def test_resume_dedupe_equal_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "r.log"
    # What the container printed, with several lines sharing timestamps.
    full = [L(10, "a"), L(20, "b1"), L(20, "b2"), L(20, "b3"), L(30, "c"), L(30, "d")]
    with LogWriter(path) as w:
        w.append(full[:3])  # engine killed after b2
        assert (w.last_ts_ns, w.line_count) == (20, 3)
    with LogWriter(path) as w:
        since = w.last_ts_ns
        assert since == 20
        replay = [x for x in full if x.ts_ns >= since]  # Docker's inclusive since
        assert w.append(replay[:2]) == 0  # b1, b2 already stored
        assert w.append(replay[2:]) == 3
    assert texts(LogReader(path)) == ["a", "b1", "b2", "b3", "c", "d"]


def test_resume_with_all_lines_and_explicit_resume(tmp_path: Path) -> None:
    path = tmp_path / "r.log"
    full = [L(1, "a"), L(2, "b"), L(2, "c"), L(3, "d"), L(3, "e")]
    with LogWriter(path) as w:
        w.append(full[:4])
        # Stream broke; the writer stays open and the engine re-follows.
        assert w.resume() == 0  # a window before the last stored line (clamped at 0)
        assert w.append(full) == 1  # everything replayed from the start
        # Live lines with an equal timestamp after resuming are kept.
        assert w.append([L(3, "f"), L(3, "g")]) == 2
        assert w.last_ts_ns == 3
    assert texts(LogReader(path)) == ["a", "b", "c", "d", "e", "f", "g"]


def test_live_lines_with_same_or_older_ts_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "r.log"
    with LogWriter(path) as w:
        assert w.last_ts_ns is None and w.resume() is None
        assert w.append([L(5, "a"), L(5, "b"), L(4, "late stderr", "stderr"), L(6, "c")]) == 4
    with LogWriter(path) as w:
        assert w.last_ts_ns == 6
        assert w.append([L(6, "c"), L(6, "new")]) == 1
    assert texts(LogReader(path)) == ["a", "b", "late stderr", "c", "new"]


def test_reopen_counts_same_ts_past_inversions(tmp_path: Path) -> None:
    path = tmp_path / "r.log"
    with LogWriter(path) as w:
        w.append([L(9, "x"), L(10, "a"), L(9, "e1", "stderr"), L(10, "b")])
    with LogWriter(path) as w:
        assert w.last_ts_ns == 10
        assert w.append([L(10, "a"), L(10, "b"), L(10, "c")]) == 1
    assert texts(LogReader(path))[-1] == "c"


# ------------------------------------------------------------------ other processes


def test_reader_follows_writer_in_another_process(tmp_path: Path) -> None:
    path = tmp_path / "p.log"
    script = textwrap.dedent(
        f"""
        import sys, time
        from picsellia_tui.engine.executors.base import LogLine
        from picsellia_tui.storage.logfile.search import export, search
        from picsellia_tui.storage.logfile.writer import LogWriter
        with LogWriter({str(path)!r}) as w:
            w.append([LogLine(1, "stdout", "first")])
            print("ready", flush=True)
            sys.stdin.readline()
            w.append(LogLine(2 + i, "stderr", f"more {{i}}") for i in range(1000))
            print("done", flush=True)
            sys.stdin.readline()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.stdin and proc.stdout
    try:
        assert proc.stdout.readline().strip() == "ready"
        r = LogReader(path)
        assert len(r) == 1 and r.record(0).text == "first"
        assert r.refresh() == 0
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "done"
        assert r.refresh() == 1000
        assert r.record(1000) == LogRecord(1001, "stderr", "more 999")
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()


def test_reader_notices_rebuilt_index(tmp_path: Path) -> None:
    path = tmp_path / "t.log"
    _write(path, 10)
    r = LogReader(path)
    assert len(r) == 10
    index_path(path).write_bytes(b"")  # crash left an empty index
    with LogWriter(path) as w:  # writer rebuilds it in place
        w.append([L(100, "after")])
    r.refresh()
    assert len(r) == 11 and r.record(10).text == "after"


def test_writer_rejects_after_close(tmp_path: Path) -> None:
    w = LogWriter(tmp_path / "c.log")
    w.close()
    w.close()
    with pytest.raises(ValueError):
        w.append([L(1, "x")])


def test_text_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from picsellia_tui.storage.logfile import record as lf

    monkeypatch.setattr(lf, "CHUNK", 64)
    path = tmp_path / "c.log"
    odd = ["plain", "é漢", "tab\there", "back\\slash", "x\ny", "\x1b[31mred", "lone \udc80"]
    with LogWriter(path) as w:
        w.append(L(i, f"row {i}") for i in range(20))
        w.append(L(100 + i, t) for i, t in enumerate(odd))
    r = LogReader(path)
    got: list[str] = []
    for first, chunk, plain in r.text_chunks(3):
        assert first == 3 + len(got)
        for raw in chunk:
            text = lf.decode_text(raw)
            if plain:
                assert raw.decode("utf-8") == text
            got.append(text)
    assert got == [f"row {i}" for i in range(3, 20)] + odd
    assert [t for _, c, _ in r.text_chunks(5, 7) for t in c] == [b"row 5", b"row 6"]
    assert list(r.text_chunks(30)) == []


def test_resume_across_out_of_order_streams_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """Docker stamps stdout and stderr in separate threads: its log order is not
    timestamp order across streams. A line of the other stream stamped before the
    last stored one must still be stored once after a resume, and none twice."""
    from picsellia_tui.engine.executors.base import LogLine

    s = 1_700_000_000_000_000_000
    docker_order = [
        LogLine(s + 10, "stdout", "a"),
        LogLine(s + 30, "stdout", "c"),
        LogLine(s + 20, "stderr", "b"),  # arrived after c, stamped before it
        LogLine(s + 40, "stdout", "d"),
        LogLine(s + 40, "stdout", "d"),  # two equal lines are both real
        LogLine(s + 50, "stderr", "e"),
    ]
    path = tmp_path / "r.log"
    with LogWriter(path) as w:
        w.append(docker_order[:2])  # the engine died before storing "b"
    with LogWriter(path) as w:
        since = w.resume()
        assert since is not None and since <= s + 10
        replay = [line for line in docker_order if line.ts_ns >= since]
        w.append(replay[:3])
        w.append(replay[3:])
    assert texts(LogReader(path)) == ["a", "c", "b", "d", "d", "e"]
