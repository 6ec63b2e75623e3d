"""Log stream decoding and the follower's lifecycle, without Docker (fake API)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from picsellia_tui.engine.executors.base import HostUnreachable, LogLine
from picsellia_tui.engine.executors.docker_logs import (
    RESUME_WINDOW_NS,
    ChunkedDecoder,
    ContainerLogReader,
    FrameDecoder,
    LineAssembler,
    LogSource,
    follow_container_logs,
    format_since,
    parse_docker_ts,
)

T0 = 1_700_000_000 * 10**9


def ts_text(ns: int) -> str:
    sec, frac = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


def frame(stream: int, ns: int, text: bytes) -> bytes:
    payload = ts_text(ns).encode() + b" " + text
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


# ------------------------------------------------------------------------ timestamps


def test_parse_docker_ts() -> None:
    assert parse_docker_ts(b"2023-11-14T22:13:20.000000001Z") == T0 + 1
    assert parse_docker_ts(b"2023-11-14T22:13:20.5Z") == T0 + 500_000_000
    assert parse_docker_ts(b"2023-11-14T22:13:20Z") == T0
    assert parse_docker_ts(b"2023-11-14T23:13:20.25+01:00") == T0 + 250_000_000
    assert parse_docker_ts(b"2023-11-14T21:13:20-01:00") == T0
    assert parse_docker_ts(b"not a timestamp") is None
    assert parse_docker_ts(b"") is None


def test_format_since_is_exact() -> None:
    assert format_since(T0 + 7) == "1700000000.000000007"


# ---------------------------------------------------------------------------- frames


def test_frame_decoder_across_chunks() -> None:
    data = frame(1, T0, b"a\n") + frame(2, T0 + 1, b"b\n")
    dec = FrameDecoder()
    got = []
    for i in range(len(data)):
        got += dec.feed(data[i : i + 1])
    assert [s for s, _ in got] == [1, 2]
    assert dec.pending_bytes == 0


def _chunked(body: bytes, sizes: list[int]) -> bytes:
    out = b""
    pos = 0
    for n in sizes:
        piece = body[pos : pos + n]
        pos += n
        if piece:
            out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    if pos < len(body):
        out += f"{len(body) - pos:x};ext=1\r\n".encode() + body[pos:] + b"\r\n"
    return out + b"0\r\n\r\n"


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(min_size=0, max_size=300),
    sizes=st.lists(st.integers(1, 50), max_size=10),
    cut=st.lists(st.integers(1, 40), min_size=1, max_size=30),
)
def test_chunked_decoder_any_split(body: bytes, sizes: list[int], cut: list[int]) -> None:
    wire = _chunked(body, sizes) + b"GARBAGE AFTER END"
    dec = ChunkedDecoder()
    out = b""
    pos = 0
    i = 0
    while pos < len(wire) and not dec.done:
        n = cut[i % len(cut)]
        out += dec.feed(wire[pos : pos + n])
        pos += n
        i += 1
    assert dec.done
    assert out == body


# ------------------------------------------------------------------------ assembling


def assemble(frames: list[tuple[str, int, bytes]], since: int | None = None) -> list[LogLine]:
    asm = LineAssembler(since, max_line_bytes=1 << 20)
    out: list[LogLine] = []
    for stream, ts, data in frames:
        asm.feed(stream, ts, data, out)  # type: ignore[arg-type]
    asm.flush(out)
    return out


def test_long_line_pieces_rejoined_with_first_timestamp() -> None:
    frames = [
        ("stdout", T0 + 1, b"x" * 16384),
        ("stderr", T0 + 2, b"err\n"),  # the other stream does not break the line
        ("stdout", T0 + 3, b"x" * 16384),
        ("stdout", T0 + 4, b"x" * 100 + b"\n"),
    ]
    got = assemble(frames)
    assert got == [
        LogLine(T0 + 2, "stderr", "err"),
        LogLine(T0 + 1, "stdout", "x" * (2 * 16384 + 100)),
    ]


def test_utf8_split_across_pieces_and_errors_replaced() -> None:
    e = "é".encode()
    got = assemble([("stdout", T0, b"caf" + e[:1]), ("stdout", T0 + 1, e[1:] + b" \xff\n")])
    assert got == [LogLine(T0, "stdout", "café \ufffd")]


def test_several_lines_in_one_frame_crlf_and_cr_progress() -> None:
    got = assemble([("stdout", T0, b"a\r\nb\n10%\r50%\r100%\nrest")])
    assert [ln.text for ln in got] == ["a", "b", "10%\r50%\r100%", "rest"]


def test_since_filters_by_first_piece() -> None:
    got = assemble([("stdout", T0, b"old\n"), ("stdout", T0 + 5, b"new\n")], since=T0 + 5)
    assert [ln.text for ln in got] == ["new"]


def test_max_line_bytes_cuts_runaway_lines() -> None:
    asm = LineAssembler(max_line_bytes=10)
    out: list[LogLine] = []
    for i in range(5):
        asm.feed("stdout", T0 + i, b"abcd", out)
    asm.flush(out)
    assert "".join(ln.text for ln in out) == "abcd" * 5
    assert all(len(ln.text) <= 12 for ln in out)


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(
        st.text(
            alphabet=st.characters(codec="utf-8", blacklist_characters="\n\r"),
            max_size=40,
        ),
        max_size=12,
    ),
    cuts=st.lists(st.integers(1, 30), min_size=1, max_size=20),
    chunk=st.integers(1, 64),
)
def test_any_piecing_and_chunking_gives_the_same_lines(
    lines: list[str], cuts: list[int], chunk: int
) -> None:
    # Pieces of the text (how the daemon may split it), each a timestamped frame,
    # and the frames' bytes delivered in arbitrary chunks.
    text = "".join(ln + "\n" for ln in lines).encode()
    frames = b""
    pos = 0
    i = 0
    while pos < len(text):
        n = cuts[i % len(cuts)]
        frames += frame(1, T0 + pos, text[pos : pos + n])
        pos += n
        i += 1
    dec = FrameDecoder()
    asm = LineAssembler()
    out: list[LogLine] = []
    for k in range(0, len(frames), chunk):
        for _sid, payload in dec.feed(frames[k : k + chunk]):
            sp = payload.find(b" ")
            ts = parse_docker_ts(payload[:sp])
            assert ts is not None
            asm.feed("stdout", ts, payload[sp + 1 :], out)
    asm.flush(out)
    assert [ln.text for ln in out] == lines
    # each line keeps the timestamp of its first piece (= its first byte's offset here)
    starts = []
    pos = 0
    for ln in lines:
        starts.append(pos)
        pos += len((ln + "\n").encode())
    piece_starts = []
    pos = 0
    i = 0
    while pos < len(text):
        piece_starts.append(pos)
        pos += cuts[i % len(cuts)]
        i += 1
    expect = [T0 + max(p for p in piece_starts if p <= s) for s in starts]
    assert [ln.ts_ns for ln in out] == expect


# ------------------------------------------------------------------- follower (fake)


class FakeSock:
    def __init__(self) -> None:
        self.cut = threading.Event()

    def shutdown(self, how: int) -> None:
        self.cut.set()

    def settimeout(self, t: object) -> None:
        pass


class FakeRaw:
    def __init__(self, chunks: list[bytes], hang: bool) -> None:
        self.chunks = list(chunks)
        self.hang = hang
        self.connection = SimpleNamespace(sock=FakeSock())

    def read1(self, n: int) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        if self.hang:
            self.connection.sock.cut.wait(30)
        return b""


class FakeAPI:
    """Serves planned responses: plan[i] = (chunks, hang) for the i-th logs request."""

    def __init__(self, plan: list[tuple[list[bytes], bool]], running_until: int) -> None:
        self.plan = list(plan)
        self.running_until = running_until  # "running" while fewer requests were made
        self.requests: list[dict[str, Any]] = []
        self.inspect_error: Exception | None = None

    def _url(self, path: str, cid: str) -> str:
        return path.format(cid)

    def _get(self, url: str, params: dict[str, Any], stream: bool) -> Any:
        self.requests.append(dict(params))
        chunks, hang = self.plan.pop(0)
        return SimpleNamespace(raw=FakeRaw(chunks, hang), close=lambda: None)

    def _raise_for_status(self, res: Any) -> None:
        pass

    def inspect_container(self, cid: str) -> dict[str, Any]:
        if self.inspect_error is not None:
            raise self.inspect_error
        return {"State": {"Running": len(self.requests) < self.running_until}}


def run_reader(api: FakeAPI, since: int | None = None, **kw: Any) -> list[LogLine]:
    out: list[LogLine] = []
    ContainerLogReader(LogSource(api, "c" * 64, poll_s=0.05, exit_grace_s=0.2), since, **kw).run(
        out.extend
    )
    return out


def test_stream_that_hangs_after_exit_is_cut_and_caught_up() -> None:
    a, b = frame(1, T0, b"a\n"), frame(1, T0 + 1, b"b\n")
    tail = frame(1, T0 + 2, b"tail-without-newline")
    api = FakeAPI([([a + b], True), ([b, tail], False)], running_until=0)
    t0 = time.monotonic()
    got = run_reader(api)
    assert time.monotonic() - t0 < 3
    assert [ln.text for ln in got] == ["a", "b", "tail-without-newline"]
    assert api.requests[0]["follow"] == 1
    assert api.requests[1]["follow"] == 0
    # resumes a window before the newest frame seen, skipping what was delivered
    assert api.requests[1]["since"] == format_since(T0 + 1 - RESUME_WINDOW_NS)


def test_broken_stream_while_running_reconnects_without_duplicates() -> None:
    a = frame(1, T0, b"a\n")
    b1, b2 = frame(1, T0 + 1, b"x" * 10), frame(1, T0 + 1, b"y\n")  # pieces share a ts
    c = frame(2, T0 + 2, b"c\n")
    api = FakeAPI(
        [([a, b1], False), ([b1, b2, c], False), ([c], False)],
        running_until=2,
    )
    got = run_reader(api)
    assert [(ln.stream, ln.text) for ln in got] == [
        ("stdout", "a"),
        ("stdout", "x" * 10 + "y"),
        ("stderr", "c"),
    ]
    assert api.requests[1]["since"] == format_since(T0 + 1 - RESUME_WINDOW_NS)
    assert [r["follow"] for r in api.requests] == [1, 1, 0]


def test_resume_with_streams_out_of_timestamp_order() -> None:
    # Docker stamps stdout and stderr separately: the file is not in ts order.
    a = frame(1, T0 + 10, b"a\n")
    late = frame(2, T0 + 5, b"late\n")
    final_err = frame(2, T0 + 7, b"final\n")
    final_out = frame(1, T0 + 6, b"final-out\n")
    api = FakeAPI([([a, late], False), ([a, late, final_err, final_out], False)], running_until=0)
    got = run_reader(api)
    assert [ln.text for ln in got] == ["a", "late", "final", "final-out"]


def test_resume_inside_a_long_line_of_identical_pieces() -> None:
    piece = b"x" * 16
    p1, p2, end = frame(1, T0, piece), frame(1, T0, piece), frame(1, T0, b"!\n")
    api = FakeAPI([([p1], False), ([p1, p2, end], False), ([], False)], running_until=2)
    got = run_reader(api)
    assert [ln.text for ln in got] == ["x" * 32 + "!"]


def test_since_is_sent_exactly() -> None:
    api = FakeAPI([([], False), ([], False)], running_until=0)
    run_reader(api, since=T0 + 123)
    assert api.requests[0]["since"] == "1700000000.000000123"


def test_unreachable_host_during_follow() -> None:
    api = FakeAPI([([frame(1, T0, b"a\n")], True)], running_until=99)
    api.inspect_error = ConnectionError("ssh died")
    with pytest.raises(HostUnreachable) as info:
        run_reader(api)
    assert "\n" not in str(info.value)


@pytest.mark.anyio
async def test_async_follow_batches_and_ends() -> None:
    lines = b"".join(frame(1, T0 + i, f"l{i}\n".encode()) for i in range(5000))
    api = FakeAPI(
        [([lines[i : i + 4096] for i in range(0, len(lines), 4096)], False), ([], False)], 0
    )
    got = [
        ln
        async for ln in follow_container_logs(
            LogSource(api, "c" * 64, poll_s=0.05, exit_grace_s=0.1)
        )
    ]
    assert [ln.text for ln in got] == [f"l{i}" for i in range(5000)]


@pytest.mark.anyio
async def test_async_follow_stops_reader_when_consumer_leaves() -> None:
    api = FakeAPI([([frame(1, T0, b"a\n")], True)], running_until=99)
    gen = follow_container_logs(LogSource(api, "c" * 64, poll_s=0.05, exit_grace_s=0.1))
    first = await gen.__anext__()
    assert first.text == "a"
    await gen.aclose()
    for _ in range(100):
        if not any(t.name.startswith("ptui-logs-") for t in threading.enumerate()):
            break
        await anyio.sleep(0.02)
    assert not any(t.name.startswith("ptui-logs-") for t in threading.enumerate())


# ------------------------------------------------------- exact cuts, counts, attach


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"")),
    cuts=st.lists(st.integers(1, 40), min_size=1, max_size=10),
    max_line=st.integers(1, 16),
)
def test_lines_depend_on_the_bytes_only(data: bytes, cuts: list[int], max_line: int) -> None:
    """However the bytes are pieced (attach frames, logs API pieces), the same lines
    come out, long ones cut every `max_line_bytes`: resuming by counts relies on it."""

    def lines(pieces: list[bytes]) -> list[str]:
        asm = LineAssembler(max_line_bytes=max_line)
        out: list[LogLine] = []
        for p in pieces:
            asm.feed("stdout", T0, p, out)
        asm.flush(out)
        return [ln.text for ln in out]

    pieces, pos, i = [], 0, 0
    while pos < len(data):
        pieces.append(data[pos : pos + cuts[i % len(cuts)]])
        pos += cuts[i % len(cuts)]
        i += 1
    whole = lines([data] if data else [])
    assert lines(pieces) == whole
    want: list[str] = []
    body = data.split(b"\n")
    if body and body[-1] == b"":
        body.pop()
    for raw in body:
        chunks = [raw[k : k + max_line] for k in range(0, len(raw), max_line)] or [b""]
        want += [c.decode("utf-8", "replace") for c in chunks]
    assert whole == want


def test_skip_leaves_out_the_first_lines_of_each_stream() -> None:
    asm = LineAssembler(skip={"stdout": 2, "stderr": 1})
    out: list[LogLine] = []
    asm.feed("stdout", T0, b"o1\no2\no3\n", out)
    asm.feed("stderr", T0, b"e1\ne2\n", out)
    asm.feed("stdout", T0, b"o4\n", out)
    assert [(ln.stream, ln.text) for ln in out] == [
        ("stdout", "o3"),
        ("stderr", "e2"),
        ("stdout", "o4"),
    ]
    assert asm.emitted == {"stdout": 2, "stderr": 1}


def raw_frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def run_attach(api: FakeAPI, chunks: list[bytes]) -> list[LogLine]:
    from picsellia_tui.engine.executors.docker_logs import AttachReader, LogSource

    res = SimpleNamespace(raw=FakeRaw(chunks, False), close=lambda: None)
    out: list[LogLine] = []
    AttachReader(LogSource(api, "c" * 64, poll_s=0.05, exit_grace_s=0.2), res).run(out.extend)
    return out


def test_attach_to_the_exit_needs_no_logs_api() -> None:
    api = FakeAPI([], running_until=0)
    got = run_attach(api, [raw_frame(1, b"a\nb\n") + raw_frame(2, b"err\n"), raw_frame(1, b"c")])
    assert [(ln.stream, ln.text) for ln in got] == [
        ("stdout", "a"),
        ("stdout", "b"),
        ("stderr", "err"),
        ("stdout", "c"),
    ]
    assert api.requests == []


def test_attach_broken_mid_run_resumes_from_the_log_by_counts() -> None:
    # attach delivered a, b, err and half of "cd"; then the connection dropped
    replay = [
        frame(1, T0, b"a\n"),
        frame(2, T0 + 1, b"err\n"),
        frame(1, T0 + 2, b"b\n"),
        frame(1, T0 + 3, b"cd\n"),
        frame(2, T0 + 4, b"err2\n"),
    ]
    api = FakeAPI([(replay, False), ([], False)], running_until=1)
    got = run_attach(api, [raw_frame(1, b"a\nb\nc") + raw_frame(2, b"err\n")])
    assert [(ln.stream, ln.text) for ln in got] == [
        ("stdout", "a"),
        ("stdout", "b"),
        ("stderr", "err"),
        ("stdout", "cd"),
        ("stderr", "err2"),
    ]
    assert "since" not in api.requests[0]  # from the start, skipping what we have
