"""`--json` output is strict JSON, even for rows written before validation refused
non-finite numbers (issue 16, item 11): NaN and +/-Infinity stored in a version's
metrics, a job's parameters or a processing's parameter specs print as null, on
every read path (the light one that reads SQLite itself, and an engine's)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.helpers import (
    Tally,
    cli_env,
    config_file,
    make_settings,
    message_problem,
    model_file,
    run_cli,
)

AREA = "hostile input"

READS = [
    ["processings", "show", "rel-probe"],
    ["processings", "list"],
    ["jobs", "show", "1"],
    ["jobs", "list"],
    ["models", "show", "m/v1"],
    ["models", "list"],
]


def _strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _poison(db: Path) -> None:
    """What an older version could store: NaN and infinities in JSON columns."""
    con = sqlite3.connect(db)
    try:
        with con:
            con.execute(
                "UPDATE model_version SET metrics = ? WHERE name = 'v1'",
                ('{"acc": NaN, "loss": Infinity, "low": -Infinity, "ok": 0.5}',),
            )
            (params,) = con.execute("SELECT parameters FROM job WHERE id = 1").fetchone()
            p = json.loads(params)
            p["interval"] = float("nan")
            con.execute("UPDATE job SET parameters = ? WHERE id = 1", (json.dumps(p),))
            (specs,) = con.execute(
                "SELECT parameters FROM processing WHERE name = 'rel-probe'"
            ).fetchone()
            s = json.loads(specs)
            for spec in s:
                if spec["name"] == "interval":
                    spec["min"], spec["max"] = float("-inf"), float("nan")
            con.execute(
                "UPDATE processing SET parameters = ? WHERE name = 'rel-probe'", (json.dumps(s),)
            )
    finally:
        con.close()


@pytest.mark.parametrize("path", ["light", "engine"])
def test_json_output_stays_strict_with_non_finite_numbers_in_old_rows(
    tmp_path: Path, tally: Tally, path: str
) -> None:
    s = make_settings(tmp_path, engine_idle_seconds=0)
    cfg = config_file(s, tmp_path / "config.toml")
    env = cli_env()
    base = ["--config", str(cfg)]
    out = run_cli([*base, "models", "import", "m/v1", str(model_file(tmp_path))], env=env)
    assert out.returncode == 0, out.stderr
    out = run_cli([*base, "launch", "rel-probe", "m/v1", "-p", "lines=1", "--wait"], env=env)
    assert out.returncode == 0, out.stderr
    _poison(s.database_path)
    if path == "engine":
        env["PICSELLIA_READ_PATH"] = "engine"  # an engine of the command's own answers
    for args in READS:
        out = run_cli([*base, *args, "--json"], env=env)
        try:
            data = _strict(out.stdout)
            problem = None
        except ValueError as exc:
            data, problem = None, str(exc)
        ok = out.returncode == 0 and problem is None
        tally.bad(AREA, ok, f"{' '.join(args)} --json ({path}): rc {out.returncode} {problem}")
        assert ok, (args, out.returncode, out.stdout[-400:], out.stderr)
        if args[:2] == ["models", "show"]:
            assert data["metrics"] == {"acc": None, "loss": None, "low": None, "ok": 0.5}
        if args[:2] == ["jobs", "show"]:
            assert data["parameters"]["interval"] is None
        if args[:2] == ["processings", "show"]:
            (spec,) = [p for p in data["parameters"] if p["name"] == "interval"]
            assert (spec["min"], spec["max"]) == (None, None)
        # The same reads for people: no crash, one-line errors at most.
        out = run_cli([*base, *args], env=env)
        ok = out.returncode == 0 and all(
            message_problem(ln) is None for ln in out.stderr.splitlines()
        )
        tally.bad(AREA, ok, f"{' '.join(args)} ({path}): rc {out.returncode} {out.stderr[:80]!r}")
        assert ok, (args, out.returncode, out.stderr)
