from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Footer, Input

from picsellia_tui.engine.executors.base import LogLine
from picsellia_tui.storage.logfile.writer import LogWriter
from picsellia_tui.tui.widgets.log_view import LogLines, LogView

pytestmark = pytest.mark.anyio

SIZE = (100, 30)
T0 = 1_700_000_000_000_000_000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class LogApp(App[None]):
    def __init__(self, path: Path | None, save_dir: Path | None = None, **kw: object) -> None:
        super().__init__()
        self.path = path
        self.save_dir = save_dir
        self.kw = kw
        self.messages: list[object] = []

    def compose(self) -> ComposeResult:
        yield LogView(self.path, save_dir=self.save_dir, **self.kw)  # type: ignore[arg-type]
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(LogView).focus()

    def on_log_view_saved(self, message: LogView.Saved) -> None:
        self.messages.append(message)

    def on_log_view_search_done(self, message: LogView.SearchDone) -> None:
        self.messages.append(message)


def write(path: Path, lines: list[tuple[str, str]] | list[str], ts0: int = T0) -> None:
    with LogWriter(path) as w:
        n = w.line_count
        w.append(
            LogLine(ts0 + (n + i) * 1_000_000, *(x if isinstance(x, tuple) else ("stdout", x)))  # type: ignore[arg-type]
            for i, x in enumerate(lines)
        )


def view_of(app: App[None]) -> LogView:
    return app.query_one(LogView)


def screen_text(app: App[None]) -> list[str]:
    return view_of(app).log_lines.visible_text()


async def settle(pilot: object, times: int = 3) -> None:
    for _ in range(times):
        await pilot.pause()  # type: ignore[attr-defined]


@pytest.fixture
def log200(tmp_path: Path) -> Path:
    path = tmp_path / "run-1.log"
    write(path, [f"line {i:03d}" + (" ERROR boom" if i % 50 == 7 else "") for i in range(200)])
    return path


async def test_bottom_shown_on_open(log200: Path) -> None:
    app = LogApp(log200)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert any("line 199" in row for row in text)
        assert not any("line 000" in row for row in text)
        lines = view_of(app).log_lines
        assert lines.virtual_size.height == 200
        assert lines.scroll_offset.y == lines.max_scroll_y > 0


async def test_follow_appends_new_lines(log200: Path) -> None:
    app = LogApp(log200)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        write(log200, ["fresh line A", "fresh line B"])
        assert view_of(app).refresh_source() == 2
        await settle(pilot)
        text = screen_text(app)
        assert "fresh line B" in "\n".join(text[-3:])


async def test_timer_polls_while_following(log200: Path) -> None:
    app = LogApp(log200)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        write(log200, ["arrived by timer"])
        await pilot.pause(0.6)
        await settle(pilot)
        assert any("arrived by timer" in row for row in screen_text(app))


async def test_follow_off_shows_new_lines_hint(log200: Path) -> None:
    app = LogApp(log200)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = view_of(app)
        await pilot.press("f")
        assert view.follow is False
        before = view.log_lines.scroll_offset.y
        write(log200, [f"new {i}" for i in range(5)])
        view.refresh_source()
        await settle(pilot)
        hint = app.query_one("#log-hint")
        assert hint.display
        assert "+5 new lines" in str(hint.render())
        assert view.log_lines.scroll_offset.y == before
        assert not any("new 4" in row for row in screen_text(app))
        await pilot.press("G")  # back to the bottom, following again
        await settle(pilot)
        assert view.follow is True
        assert not hint.display
        assert any("new 4" in row for row in screen_text(app))


async def test_scrolling_up_stops_following(log200: Path) -> None:
    app = LogApp(log200)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("pageup")
        await settle(pilot)
        assert view_of(app).follow is False


async def test_top_and_bottom(log200: Path) -> None:
    app = LogApp(log200)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        text = screen_text(app)
        assert "line 000" in text[0]
        assert view_of(app).follow is False
        await pilot.press("G")
        await settle(pilot)
        assert any("line 199" in row for row in screen_text(app))


async def test_search_highlights_and_moves(log200: Path) -> None:
    app = LogApp(log200)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = view_of(app)
        await pilot.press("g")
        await pilot.press("slash")
        search = app.query_one("#log-search", Input)
        assert search.has_focus
        await pilot.press(*"error")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await settle(pilot)
        lines = view.log_lines
        assert lines.has_focus
        assert lines.current_line == 7
        # Matches are highlighted on visible rows.
        match_style = lines.get_component_rich_style("log-lines--match")
        row = lines.render_line(7 - lines.scroll_offset.y)
        assert any(
            seg.text == "ERROR" and seg.style and seg.style.bgcolor == match_style.bgcolor
            for seg in row
        )
        await pilot.press("n")
        await app.workers.wait_for_complete()
        await settle(pilot)
        assert lines.current_line == 57
        await pilot.press("n")
        await app.workers.wait_for_complete()
        await settle(pilot)
        assert lines.current_line == 107
        assert any("line 107 ERROR" in r for r in screen_text(app))
        await pilot.press("N")
        await app.workers.wait_for_complete()
        await settle(pilot)
        assert lines.current_line == 57
        # After the last match, n wraps to the top.
        for _ in range(3):
            await pilot.press("n")
            await app.workers.wait_for_complete()
            await settle(pilot)
        assert lines.current_line == 7
        done = [m for m in app.messages if isinstance(m, LogView.SearchDone)]
        assert done and done[-1].line == 7


async def test_search_not_found_and_bad_regex(log200: Path) -> None:
    app = LogApp(log200)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = view_of(app)
        view.search("no such thing")
        await app.workers.wait_for_complete()
        await settle(pilot)
        assert view.log_lines.current_line is None
        view.search("re:line 1[0-9]{2} ERR")
        await app.workers.wait_for_complete()
        await settle(pilot)
        assert view.log_lines.current_line in (107, 157)
        view.search("re:(")  # invalid: a notification, no crash
        await settle(pilot)


async def test_wrap_toggles(tmp_path: Path) -> None:
    path = tmp_path / "wide.log"
    long = "".join(f"{i:03d}," for i in range(100))  # 400 columns
    write(path, ["short", long, "tail line"])
    app = LogApp(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        lines = view_of(app).log_lines
        assert lines.virtual_size.height == 3
        assert lines.virtual_size.width > 400
        await pilot.press("w")
        await settle(pilot)
        assert view_of(app).wrap
        width = lines.scrollable_content_region.width
        assert lines.virtual_size.width == width
        rows = 1 + -(-(2 + 400) // width) + 1
        assert lines.virtual_size.height == rows
        text = screen_text(app)
        joined = "".join(r.rstrip() for r in text[1 : rows - 1])
        assert "099," in joined and "050," in joined
        assert text[rows - 1].strip() == "tail line"
        await pilot.press("w")
        await settle(pilot)
        assert lines.virtual_size.height == 3


async def test_wrap_big_log_measures_in_background(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    with LogWriter(path) as w:
        w.append(
            LogLine(T0 + i, "stdout", f"row {i} " + "x" * (150 if i % 2 else 10))
            for i in range(30_000)
        )
    app = LogApp(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await app.workers.wait_for_complete()
        await settle(pilot, 5)
        lines = view_of(app).log_lines
        assert lines.wrapped
        assert lines.virtual_size.height == 15_000 * 1 + 15_000 * 2
        assert any("row 29999" in r for r in screen_text(app))


async def test_timestamps_toggle(log200: Path) -> None:
    app = LogApp(log200)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        ts_rx = re.compile(r"\d\d:\d\d:\d\d\.\d{3} line 199")
        assert not any(ts_rx.search(r) for r in screen_text(app))
        await pilot.press("t")
        await settle(pilot)
        assert any(ts_rx.search(r) for r in screen_text(app))
        await pilot.press("t")
        await settle(pilot)
        assert not any(ts_rx.search(r) for r in screen_text(app))


async def test_stderr_is_marked(tmp_path: Path) -> None:
    path = tmp_path / "err.log"
    write(path, [("stdout", "all good"), ("stderr", "Traceback here")])
    app = LogApp(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert text[0].startswith("  all good")
        assert text[1].startswith("▌ Traceback here")


async def test_save_writes_file(log200: Path, tmp_path: Path) -> None:
    save_dir = tmp_path / "saved"
    app = LogApp(log200, save_dir=save_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await app.workers.wait_for_complete()
        await settle(pilot)
        saved = [m for m in app.messages if isinstance(m, LogView.Saved)]
        assert saved and saved[0].path == save_dir / "run-1.log"
        content = saved[0].path.read_text().splitlines()
        assert len(content) == 200 and content[0] == "line 000"
        await pilot.press("s")  # a second save does not overwrite the first
        await app.workers.wait_for_complete()
        await settle(pilot)
        assert (save_dir / "run-1-1.log").exists()


CONTROL_LINES = [
    "\x1b]0;pwned title\x07\x1b[2J\x1b[H\x1b[31mred\x1b[0m plain",
    "\x1b]8;;https://evil\x1b\\link\x1b]8;;\x1b\\ \x1bPdcs\x1b\\ \x1b_apc\x1b\\",
    " 10%|#    |\r 50%|###  |\r100%|#####|\r",
    "bell\x07 nul\x00 c1\x9b2J del\x7f back\bspace\ttab",
    "\x1b[?1049h\x1b[?25l\x1b[38;5;196mbright\x1b[0m\x1bc\x1b(B",
    "lone \ud800 surrogate and \u202eoverride",
]


async def test_control_sequences_never_reach_the_terminal(tmp_path: Path) -> None:
    path = tmp_path / "ctl.log"
    write(path, CONTROL_LINES)
    app = LogApp(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        lines = view_of(app).log_lines
        for toggles in ("", "t", "w"):
            if toggles:
                await pilot.press(toggles)
                await settle(pilot)
            for y in range(lines.scrollable_content_region.height):
                for seg in lines.render_line(y):
                    assert not re.search("[\x00-\x1f\x7f-\x9f\ud800-\udfff]", seg.text), repr(seg)
        text = screen_text(app)
        assert any("red plain" in r for r in text)
        assert any("100%|#####|" in r and "50%" not in r for r in text)
        assert not any("pwned" in r for r in text)
        # The colour survived as a style, not as an escape code.
        red_row = next(y for y, r in enumerate(text) if "red plain" in r)
        assert any(
            seg.text == "red" and seg.style and seg.style.color and seg.style.color.number == 1
            for seg in lines.render_line(red_row)
        )


async def test_switch_source_and_empty(tmp_path: Path, log200: Path) -> None:
    app = LogApp(None)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = view_of(app)
        assert all(not r.strip() for r in screen_text(app))
        assert view.refresh_source() == 0
        view.set_source(log200)
        await settle(pilot)
        assert any("line 199" in r for r in screen_text(app))
        missing = tmp_path / "not-yet.log"
        view.set_source(missing)
        await settle(pilot)
        assert all(not r.strip() for r in screen_text(app))
        write(missing, ["it exists now"])
        assert view.refresh_source() == 1
        await settle(pilot)
        assert any("it exists now" in r for r in screen_text(app))


async def test_footer_shows_bindings(log200: Path) -> None:
    app = LogApp(log200)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        active = app.screen.active_bindings
        for key in ("f", "w", "t", "g", "G", "slash", "n", "N", "s"):
            assert key in active, key
        assert active["f"].binding.description == "Follow"
        assert app.screen.maximize(view_of(app).log_lines)
        assert app.screen.maximized is view_of(app)


async def test_typing_in_search_bar_does_not_trigger_keys(log200: Path) -> None:
    app = LogApp(log200)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = view_of(app)
        await pilot.press("slash")
        await pilot.press(*"fwtgGnNs")
        bar = app.query_one("#log-search", Input)
        assert bar.value == "fwtgGnNs"
        assert view.follow and not view.wrap and not view.show_timestamps
        await pilot.press("escape")
        await settle(pilot)
        assert not bar.display
        assert view.log_lines.has_focus
        assert view.log_lines.highlight is None


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "million.log"
    pad = "x" * 88
    with LogWriter(path) as w:
        for start in range(0, 1_000_000, 50_000):
            w.append(
                LogLine(T0 + i, "stdout", f"{i:09d} {pad}") for i in range(start, start + 50_000)
            )
    return path


async def test_million_lines_open_fast(million: Path) -> None:
    app = LogApp(million)
    async with app.run_test(size=SIZE) as pilot:
        t = time.perf_counter()
        await settle(pilot)
        text = screen_text(app)
        elapsed = time.perf_counter() - t
        assert any("000999999" in r for r in text), text[-3:]
        lines = view_of(app).log_lines
        assert lines.virtual_size.height == 1_000_000
        assert elapsed < 5
        await pilot.press("g")
        await settle(pilot)
        assert "000000000" in screen_text(app)[0]


def test_log_lines_is_a_scroll_view() -> None:
    from textual.scroll_view import ScrollView

    assert issubclass(LogLines, ScrollView)


async def test_wrap_keeps_the_top_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.log"
    write(path, [f"line {i:03d} " + ("y" * 250 if i % 3 == 0 else "") for i in range(300)])
    app = LogApp(path, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        lines = view_of(app).log_lines
        lines.scroll_to(y=120, animate=False)
        await settle(pilot)
        assert lines.top_line == 120
        await pilot.press("w")
        await settle(pilot)
        assert lines.wrapped and lines.top_line == 120
        assert screen_text(app)[0].startswith("  line 120")
        await pilot.press("t")
        await settle(pilot)
        assert lines.top_line == 120
        await pilot.press("w")
        await settle(pilot)
        assert not lines.wrapped and lines.top_line == 120


async def test_switching_source_without_follow_opens_at_top(log200: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.log"
    write(other, [f"other {i}" for i in range(100)])
    app = LogApp(log200, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = view_of(app)
        assert "line 000" in screen_text(app)[0]
        view.log_lines.scroll_to(y=150, animate=False)
        await pilot.press("w")
        await settle(pilot)
        view.set_source(other)
        await settle(pilot)
        assert "other 0" in screen_text(app)[0]
        view.follow = True
        await settle(pilot)
        assert any("other 99" in r for r in screen_text(app))


async def test_a_following_view_stays_at_the_bottom_when_it_gets_shorter(log200: Path) -> None:
    """A box appearing above the log (a failed run's error summary) or a smaller
    terminal: a following log still shows its last line. It used to keep its
    scroll offset, so the last lines went out of view (the failed-job snapshot
    depended on whether the summary came before or after the log)."""
    app = LogApp(log200)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        lines = view_of(app).log_lines
        assert lines.scroll_offset.y == lines.max_scroll_y
        await pilot.resize_terminal(SIZE[0], SIZE[1] - 8)
        await settle(pilot)
        assert screen_text(app)[-1].strip() == "line 199"
        assert lines.scroll_offset.y == lines.max_scroll_y
