"""The interface driven by keys on a real workspace: a real SQLite file, the
engine in its thread, processings run as local subprocesses (process executor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TabbedContent

from picsellia_tui.tui.app import AppEngineHandle, PicselliaApp, run_app
from picsellia_tui.tui.dialogs.confirm import ConfirmDialog
from picsellia_tui.tui.dialogs.help import HelpScreen
from picsellia_tui.tui.dialogs.launch import LaunchDialog
from picsellia_tui.tui.dialogs.rerun import RerunDialog
from picsellia_tui.tui.screens.main import MainScreen
from picsellia_tui.tui.widgets.job_detail import RunsTable
from picsellia_tui.tui.widgets.jobs import JobsPane
from picsellia_tui.tui.widgets.jobs_table import JobsTable
from picsellia_tui.tui.widgets.log_view import LogView
from tests.tui.helpers import make_settings, ready, screen_text, until, workspace

pytestmark = pytest.mark.anyio
SIZE = (100, 30)


def main(app: PicselliaApp) -> MainScreen:
    screen = app.screen_stack[0]
    assert isinstance(screen, MainScreen)
    return screen


def active_tab(app: PicselliaApp) -> str:
    return main(app).query_one(TabbedContent).active


def jobs_pane(app: PicselliaApp) -> JobsPane:
    return main(app).query_one(JobsPane)


def job_status(app: PicselliaApp, job_id: int) -> str | None:
    job = jobs_pane(app).table.jobs.get(job_id)
    return job.status if job else None


async def open_launch(pilot: Pilot[Any]) -> LaunchDialog:
    await until(pilot, lambda: isinstance(pilot.app.screen, LaunchDialog))
    dialog = pilot.app.screen
    assert isinstance(dialog, LaunchDialog)
    await until(pilot, lambda: dialog.query("#param-lines") and dialog.query("#version-name"))
    # The new version's name is prefilled (checked free in a worker).
    await until(pilot, lambda: dialog.query_one("#version-name", Input).value)
    return dialog


async def type_into(pilot: Pilot[Any], dialog: LaunchDialog, field: str, text: str) -> None:
    """Tab to a field (keys only), clear it, type."""
    widget = dialog.query_one(f"#{field}")
    for _ in range(12):
        if dialog.focused is widget:
            break
        await pilot.press("tab")
    assert dialog.focused is widget, f"could not tab to {field}"
    await pilot.press("end", "ctrl+u", *text)


def launch_now(handle: AppEngineHandle, **params: Any) -> int:
    job = handle.call(lambda e: e.launch("test-copy", "m/v1", params))
    return job.id


def wait_final(handle: AppEngineHandle, job_id: int) -> str:
    from tests.tui.helpers import wait_for

    def final() -> str | None:
        job = handle.call(lambda e: e.job(job_id))
        return job.status if job.status not in ("pending", "running") else None

    return wait_for(final, timeout=30)


# -- launch -----------------------------------------------------------------------------


async def test_launch_from_a_processing_with_valid_parameters(ws: AppEngineHandle) -> None:
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await until(pilot, lambda: main(app).query_one("#proc-table").row_count >= 2)
        await pilot.press("enter")  # the cursor starts on test-copy
        dialog = await open_launch(pilot)
        # The version picker lists m/v1 (compatible); the form has the defaults.
        assert dialog.version is not None and dialog.version.ref == "m/v1"
        assert dialog.query_one("#param-lines", Input).value == "3"
        assert dialog.query_one("#version-name", Input).value == "v1-copy"
        await type_into(pilot, dialog, "param-lines", "5")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        # The Jobs tab opens on the new job, its log following.
        assert active_tab(app) == "jobs"
        await until(pilot, lambda: job_status(app, 1) == "succeeded")
        job = ws.call(lambda e: e.job(1))
        assert job.parameters["lines"] == 5 and job.output_version_name == "v1-copy"
        pane = jobs_pane(app)
        assert pane.query_one(JobsTable).cursor_key == "1"
        log = pane.query_one(LogView)
        assert log.follow
        await until(pilot, lambda: "line 4" in "\n".join(log.log_lines.visible_text()))
        assert "done" in "\n".join(log.log_lines.visible_text())


async def test_launch_with_invalid_parameters_shows_inline_errors(ws: AppEngineHandle) -> None:
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("2")  # ModelVersions: launch on m/v1, pick the processing
        await until(pilot, lambda: main(app).query_one("#versions-table").row_count == 1)
        await pilot.press("l")
        dialog = await open_launch(pilot)
        assert dialog.proc is not None and dialog.proc.name == "test-copy"

        await type_into(pilot, dialog, "param-lines", "abc")
        err = dialog.query_one("#err-lines")
        assert "'abc' is not an integer" in str(err.render())  # as typed, before launching
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.screen is dialog, "an invalid form must not launch"
        assert dialog.focused is dialog.query_one("#param-lines")
        assert "lines" in str(dialog.query_one("#launch-error").render())

        await type_into(pilot, dialog, "param-lines", "2000000")
        await type_into(pilot, dialog, "param-sleep", "-1")
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        assert "above the maximum 1000000" in str(dialog.query_one("#err-lines").render())
        assert "below the minimum 0" in str(dialog.query_one("#err-sleep").render())
        assert ws.call(lambda e: e.count_jobs()) == 0

        # A name the model already has: refused, shown under the name field.
        await type_into(pilot, dialog, "param-lines", "1")
        await type_into(pilot, dialog, "param-sleep", "0")
        await type_into(pilot, dialog, "version-name", "v1")
        await pilot.press("ctrl+s")
        await until(
            pilot,
            lambda: (
                "already has a version 'v1'" in str(dialog.query_one("#err-version_name").render())
            ),
        )
        assert app.screen is dialog
        assert ws.call(lambda e: e.count_jobs()) == 0

        # Fixed: it launches.
        await type_into(pilot, dialog, "version-name", "v1-fixed")
        await pilot.pause(0.4)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert ws.call(lambda e: e.count_jobs()) == 1
        assert ws.call(lambda e: e.job(1)).output_version_name == "v1-fixed"


async def test_engine_refusal_lands_under_its_field(ws: AppEngineHandle) -> None:
    """An InvalidInput from the engine (here the name taken between the check and
    the launch) is shown under the field it names."""
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("enter")
        dialog = await open_launch(pilot)
        await pilot.pause(0.6)  # the uniqueness check of the prefilled name is done
        dialog._refused("version_name", "model 'm' already has a version 'v1-copy'")
        await pilot.pause(0.1)
        assert "already has a version" in str(dialog.query_one("#err-version_name").render())
        dialog._refused("lines", "parameter 'lines': 'x' is not an integer")
        await pilot.pause(0.1)
        assert str(dialog.query_one("#err-lines").render()).endswith("'x' is not an integer")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert ws.call(lambda e: e.count_jobs()) == 0


# -- re-run, edited re-run, cancel ---------------------------------------------------------


async def test_rerun_refused_while_active_then_accepted(ws: AppEngineHandle) -> None:
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        job_id = launch_now(ws, sleep=6)
        await pilot.press("3")
        await until(pilot, lambda: job_status(app, job_id) == "running")
        await until(pilot, lambda: jobs_pane(app).detail.current is not None)
        await pilot.press("r")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, RerunDialog), "no confirmation while active"
        assert any("refused" in (n.title or "") for n in app._notifications)
        assert ws.call(lambda e: e.job(job_id)).attempts == 1

        await until(pilot, lambda: job_status(app, job_id) == "succeeded", timeout=30)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RerunDialog))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await until(pilot, lambda: jobs_pane(app).table.jobs[job_id].attempts == 2)
        runs = jobs_pane(app).query_one(RunsTable)
        await until(pilot, lambda: runs.row_count == 2)
        await until(pilot, lambda: job_status(app, job_id) == "succeeded", timeout=30)
        job = ws.call(lambda e: e.job(job_id))
        assert [r.status for r in job.runs] == ["succeeded", "succeeded"]
        # The log pane shows the new run (attempt 2).
        log = jobs_pane(app).query_one(LogView)
        await until(pilot, lambda: "attempt 2" in "\n".join(log.log_lines.visible_text()))


async def test_edited_rerun_opens_a_prefilled_launch(ws: AppEngineHandle) -> None:
    job_id = launch_now(ws, lines=7)
    assert wait_final(ws, job_id) == "succeeded"
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("3")
        await until(pilot, lambda: jobs_pane(app).detail.current is not None)
        await pilot.press("R")
        dialog = await open_launch(pilot)
        assert "re-run job 1" in str(dialog.query_one("#launch-box").border_title)
        assert dialog.proc is not None and dialog.version is not None
        assert dialog.query_one("#param-lines", Input).value == "7"
        # v1-copy exists now (job 1 made it): the next free name is offered.
        assert dialog.query_one("#version-name", Input).value == "v1-copy-2"
        await type_into(pilot, dialog, "param-lines", "2")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await until(pilot, lambda: job_status(app, 2) == "succeeded")
        new = ws.call(lambda e: e.job(2))
        assert new.parameters["lines"] == 2 and new.target == "m/v1"
        assert new.output_version_name == "v1-copy-2"
        assert jobs_pane(app).query_one(JobsTable).cursor_key == "2"
        assert ws.call(lambda e: e.job(1)).attempts == 1  # the old job is untouched


async def test_cancel_kills_the_active_run(ws: AppEngineHandle) -> None:
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        job_id = launch_now(ws, sleep=60)
        await pilot.press("3")
        await until(pilot, lambda: job_status(app, job_id) == "running")
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")  # not yet
        await pilot.pause(0.2)
        assert ws.call(lambda e: e.job(job_id)).status == "running"
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: job_status(app, job_id) == "killed", timeout=20)
        assert "killed" in screen_text(app)
        await pilot.press("c")  # nothing left to cancel: a notice, no dialog
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmDialog)


# -- log pane ------------------------------------------------------------------------------


async def test_log_follow_search_wrap(ws: AppEngineHandle) -> None:
    job_id = launch_now(ws, lines=300)
    assert wait_final(ws, job_id) == "succeeded"
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("3")
        pane = jobs_pane(app)
        log = pane.query_one(LogView)
        await until(pilot, lambda: log.reader is not None and len(log.reader) > 300)
        await pilot.press("enter")  # from the job list into the log
        assert app.focused is log.log_lines
        assert log.follow
        await until(pilot, lambda: "done" in "\n".join(log.log_lines.visible_text()))
        await pilot.press("f")
        assert not log.follow
        await pilot.press("g")
        await until(pilot, lambda: "starting job" in "\n".join(log.log_lines.visible_text()))
        await pilot.press("slash", *"line 150", "enter")
        await until(pilot, lambda: log.log_lines.current_line is not None)
        first = log.log_lines.current_line
        assert "line 150" in log.reader.record(first).text
        assert any("line 150" in t for t in log.log_lines.visible_text())
        await pilot.press("n")
        await pilot.pause(0.3)
        assert log.log_lines.current_line == first  # only one line matches
        await pilot.press("w")
        assert log.wrap
        await pilot.press("t")
        assert log.show_timestamps
        await pilot.press("G")
        assert log.follow
        # The log keys also work from the job list (forwarded to the log pane).
        pane.query_one(JobsTable).focus()
        await pilot.press("w")
        assert not log.wrap
        await pilot.press("z")  # zoom the log pane, and back
        assert main(app).maximized is log
        await pilot.press("z")
        assert main(app).maximized is None


async def test_live_log_while_the_run_is_active(ws: AppEngineHandle) -> None:
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("3")
        job_id = launch_now(ws, lines=4, sleep=2.0)
        await until(pilot, lambda: job_status(app, job_id) == "running")
        log = jobs_pane(app).query_one(LogView)
        await until(pilot, lambda: "line 3" in "\n".join(log.log_lines.visible_text()))
        assert job_status(app, job_id) == "running"  # lines seen before the end
        await until(pilot, lambda: job_status(app, job_id) == "succeeded", timeout=30)
        await until(pilot, lambda: "done" in "\n".join(log.log_lines.visible_text()))


# -- navigation ---------------------------------------------------------------------------


async def test_jump_from_a_version_to_its_origin_job(ws: AppEngineHandle) -> None:
    # One after the other: the first job to finish names its output m/v1-copy.
    first = launch_now(ws, lines=1)
    assert wait_final(ws, first) == "succeeded"
    second = launch_now(ws, lines=2)
    assert wait_final(ws, second) == "succeeded"
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("2")
        table = main(app).query_one("#versions-table")
        await until(pilot, lambda: table.row_count == 3)
        await pilot.press("o")  # m/v1 was imported: nothing to jump to
        await pilot.pause(0.1)
        assert active_tab(app) == "versions"
        await pilot.press("down")  # m/v1-copy, made by the first job
        assert table.cursor_key == "m/v1-copy"
        await pilot.press("o")
        await until(pilot, lambda: active_tab(app) == "jobs")
        pane = jobs_pane(app)
        await until(pilot, lambda: pane.query_one(JobsTable).cursor_key == str(first))
        await until(
            pilot, lambda: pane.detail.current is not None and pane.detail.current.id == first
        )


async def test_processings_filter_and_tabs(ws: AppEngineHandle) -> None:
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        table = main(app).query_one("#proc-table")
        await until(pilot, lambda: table.row_count == 4)  # 3 groups + test-copy
        await pilot.press("slash", *"zzz")
        assert table.row_count == 3  # groups only
        await pilot.press("escape")
        assert table.row_count == 4 and app.focused is table
        await pilot.press("slash", *"COMPRESSION", "enter")
        assert table.row_count == 4 and table.cursor_key == "test-copy"
        for key, tab in (("2", "versions"), ("3", "jobs"), ("1", "processings")):
            await pilot.press(key)
            assert active_tab(app) == tab


async def test_help_lists_every_binding_and_palette_offers_actions(
    ws: AppEngineHandle,
) -> None:
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "Everywhere" in screen_text(app) and "Processings (1)" in screen_text(app)
        from picsellia_tui.tui.keymap import help_rows

        text = "\n".join(f"{k} {d}" for _, rows in help_rows() for k, d in rows)
        for words in (
            "Re-run",
            "Edit+re-run",
            "Cancel run",
            "Origin job",
            "Filter",
            "Follow",
            "Wrap",
            "Search",
            "Save",
            "Launch",
        ):
            assert words in text, words
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)

        from picsellia_tui.tui.keymap import palette_entries

        titles = {e.title for e in palette_entries(app)}
        assert {
            "Jobs: Re-run",
            "Jobs: Cancel run",
            "ModelVersions: Origin job",
            "Log pane: Search",
            "Processings: Filter",
        } <= titles
        entry = next(e for e in palette_entries(app) if e.title == "Jobs: Re-run")
        entry.callback()  # runs on the Jobs tab: no job, so a notice
        await pilot.pause(0.2)
        assert active_tab(app) == "jobs"


async def test_two_instances_see_each_others_jobs_and_logs(tmp_path: Path) -> None:
    """Two apps on one workspace (two SSH sessions): a job launched by one shows
    up, with its live log, in the other."""
    with workspace(tmp_path) as a, workspace(tmp_path, seed=False) as b:
        app = PicselliaApp(a, frozen_time=True)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await pilot.press("3")
            job = b.call(lambda e: e.launch("test-copy", "m/v1", {"lines": 3, "sleep": 1.5}))
            await until(pilot, lambda: job.id in jobs_pane(app).table.jobs)
            pane = jobs_pane(app)
            pane.focus_job(job.id)
            log = pane.query_one(LogView)
            await until(pilot, lambda: "line 2" in "\n".join(log.log_lines.visible_text()))
            await until(pilot, lambda: job_status(app, job.id) == "succeeded", timeout=30)


async def test_header_shows_workspace_and_live_counts(ws: AppEngineHandle) -> None:
    app = PicselliaApp(ws, frozen_time=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        # Both parts come from one stats answer; the counts may be laid out a frame later.
        await until(pilot, lambda: "0 running" in screen_text(app).splitlines()[0])
        head = screen_text(app).splitlines()[0]
        assert "tester" in head and "process" in head and "0 running" in head
        # Running until cancelled: a 2 s run could end, under load, before the
        # header's stats query saw it running, and "1 running" never came.
        job_id = launch_now(ws, sleep=600.0)
        await until(pilot, lambda: "1 running" in screen_text(app).splitlines()[0])
        ws.call(lambda e: e.cancel(job_id))
        assert wait_final(ws, job_id) == "killed"
        await until(pilot, lambda: "0 running" in screen_text(app).splitlines()[0])


# -- run_app --------------------------------------------------------------------------------


def test_run_app_fails_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    settings = make_settings(tmp_path, data_dir=blocker / "data")
    with pytest.raises(SystemExit) as exc:
        run_app(settings)
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("picsellia-tui: ") and "\n" not in err
    assert "Traceback" not in err


# -- any terminal ---------------------------------------------------------------------------


async def test_80x24_failed_job_keeps_trace_and_log_visible(
    ws: AppEngineHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80x24 with NO_COLOR: the failed run's trace and its log both show, and
    statuses stay readable without colour (a symbol and a word)."""
    job_id = launch_now(ws, fail=True)
    assert wait_final(ws, job_id) == "failed"
    monkeypatch.setenv("NO_COLOR", "1")
    app = PicselliaApp(ws, frozen_time=True)
    assert app.no_color
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("3")
        pane = jobs_pane(app)
        await until(
            pilot,
            lambda: pane.detail.current is not None and pane.detail.current.status == "failed",
        )
        await pilot.pause(0.5)
        text = screen_text(app)
        assert "✗ failed" in text
        assert "RuntimeError: asked to fail" in text  # the end of the trace, at a glance
        assert "run #1 failed: exited with code 1" in text
        log = pane.query_one(LogView)
        assert log.log_lines.size.height >= 3
        assert log.log_lines.visible_text()


def test_missing_image_says_how_to_build() -> None:
    from rich.console import Console

    from picsellia_tui.engine.views import ProcessingView
    from picsellia_tui.storage.domain import Constraints
    from picsellia_tui.tui.widgets.processings import render_processing

    p = ProcessingView(
        id=1,
        name="onnx-float16",
        version="1.0.0",
        description="",
        task="MODEL_COMPRESSION",
        target_type="model_version",
        image="picsellia-tui/onnx-float16:1.0.0",
        command=["python", "main.py"],
        output_mode="new_model_version",
        parameters=[],
        constraints=Constraints(),
        visibility="public",
        owner=None,
        source_dir=None,
    )
    console = Console(width=200, record=True)

    def shown(presence: dict[str, bool] | None) -> str:
        console.print(render_processing(p, presence, "docker"))
        return console.export_text()

    assert "missing — build: picsellia-tui processings build onnx-float16" in shown(
        {"onnx-float16": False}
    )
    assert "present on the host" in shown({"onnx-float16": True})
    assert "did not answer" in shown({})
