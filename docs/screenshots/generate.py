"""Regenerate the screenshots of docs/tui.md (SVG exported by the app itself).

    .venv/bin/python docs/screenshots/generate.py

It prepares a demo workspace in a temp folder (real digit models, processings run
as local processes), runs three jobs (a quantization, an evaluation, a conversion
that fails) and drives the app with Textual's pilot at 120x34.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from picsellia_tui.engine.config import load_settings
from picsellia_tui.tui.app import AppEngineHandle, PicselliaApp
from picsellia_tui.tui.dialogs.launch import LaunchDialog
from picsellia_tui.tui.screens.main import MainScreen
from picsellia_tui.tui.widgets.jobs import JobsPane

OUT = Path(__file__).resolve().parent
SIZE = (120, 34)
EXE = Path(sys.executable).parent / "picsellia-tui"


def wait_final(handle: AppEngineHandle, job_id: int) -> None:
    for _ in range(600):
        if handle.call(lambda e: e.job(job_id)).status not in ("pending", "running"):
            return
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id}")


async def until(pilot: Any, check: Any, timeout: float = 30) -> None:
    for _ in range(int(timeout / 0.05)):
        try:
            if check():
                return
        except Exception:
            pass
        await pilot.pause(0.05)
    raise TimeoutError("the app did not get there")


async def shoot(handle: AppEngineHandle) -> None:
    app = PicselliaApp(handle)

    def main() -> MainScreen:
        screen = app.screen_stack[0]
        assert isinstance(screen, MainScreen)
        return screen

    async def save(name: str, pilot: Any) -> None:
        app.clear_notifications()
        await pilot.pause(0.5)
        app.clear_notifications()
        app.save_screenshot(filename=f"{name}.svg", path=str(OUT))
        print(f"wrote {OUT / name}.svg")

    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: main().query_one("#proc-table").row_count >= 4)
        await pilot.press("down", "down")  # onnx-dynamic-quantization
        await save("processings", pilot)

        await pilot.press("2")
        table = main().query_one("#versions-table")
        await until(pilot, lambda: table.row_count >= 3)
        table.select_key("digits-mlp/v1-quantization")
        await pilot.pause(0.5)
        await save("modelversions", pilot)

        await pilot.press("3")
        pane = main().query_one(JobsPane)
        await until(pilot, lambda: len(pane.jobs) == 3 and pane.current is not None)
        pane.focus_job(1, follow=True)
        await until(pilot, lambda: pane.current is not None and pane.current.id == 1)
        await until(pilot, lambda: all(j in pane.latest_runs for j in pane.jobs))
        await save("jobs", pilot)

        pane.focus_job(3, follow=True)
        await until(pilot, lambda: pane.current is not None and pane.current.id == 3)
        await save("failed-job", pilot)

        await pilot.press("1", "enter")  # the cursor is still on onnx-dynamic-quantization
        await until(pilot, lambda: isinstance(app.screen, LaunchDialog))
        await until(pilot, lambda: app.screen.query_one("#version-name").value)
        app.screen.query_one("#version-name").focus()
        await pilot.press("end", "ctrl+u", *"v1 int8!")  # not a valid name: shown inline
        await pilot.pause(0.2)
        await save("launch", pilot)
        await pilot.press("escape")

        await pilot.press("question_mark")
        await pilot.pause(0.3)
        await save("help", pilot)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="picsellia-demo-") as tmp:
        data = Path(tmp) / "demo"
        subprocess.run(
            [str(EXE), "--data-dir", str(data), "--executor", "process", "demo", "--no-open"],
            check=True,
        )
        cfg = Path(tmp) / "config.toml"
        cfg.write_text(f'organization = "demo"\ndata_dir = "{data}"\nexecutor = "process"\n')
        handle = AppEngineHandle(load_settings(cfg), supervise=True)
        handle.start()
        try:
            for proc, ref, params in (
                ("onnx-dynamic-quantization", "digits-mlp/v1", {}),
                ("model-evaluator", "digits-cnn/v1", {"runs": 200}),
                ("model-converter", "digits-cnn/v1", {"input_model_file_name": "eval.npz"}),
            ):
                job = handle.call(lambda e, p=proc, r=ref, x=params: e.launch(p, r, x))
                wait_final(handle, job.id)
            asyncio.run(shoot(handle))
        finally:
            handle.stop()


if __name__ == "__main__":
    main()
