"""The read commands' fast path: `jobs list/show/logs`, `models list/show`,
`processings list/show` parsed with argparse and run without the typer command
line, whose parsing imports pydantic (about 0.15 s: as long as the whole answer).

Only well-formed calls take it. Anything else (`--help`, an unknown or
misspelt option, a value out of range) returns False and the typer command line
parses the same arguments, so its help and its error messages stay the only
ones. The options mirror the typer commands' (cli/jobs.py, models.py,
processings.py); a test runs each command both ways.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn


class _NotFast(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _NotFast(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _NotFast(message or "")


def _bounded(lo: int, hi: int | None = None) -> Any:
    def parse(text: str) -> int:
        value = int(text)
        if value < lo or (hi is not None and value > hi):
            raise ValueError(text)
        return value

    return parse


def _parser() -> _Parser:
    p = _Parser(add_help=False, allow_abbrev=False)
    p.add_argument("--config", type=Path)
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--executor")
    groups = p.add_subparsers(dest="group", required=True, parser_class=_Parser)

    jobs = groups.add_parser("jobs", add_help=False, allow_abbrev=False)
    jobs_cmds = jobs.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    c = jobs_cmds.add_parser("list", add_help=False, allow_abbrev=False)
    c.add_argument("--status")
    c.add_argument("--limit", "-n", type=_bounded(1, 10000), default=50)
    c.add_argument("--page", type=_bounded(1), default=1)
    c.add_argument("--json", action="store_true")
    c = jobs_cmds.add_parser("show", add_help=False, allow_abbrev=False)
    c.add_argument("job_id", type=int)
    c.add_argument("--json", action="store_true")
    c = jobs_cmds.add_parser("logs", add_help=False, allow_abbrev=False)
    c.add_argument("job_id", type=int)
    c.add_argument("--run", type=int)
    c.add_argument("--follow", "-f", action="store_true")
    c.add_argument("--timestamps", "-t", action="store_true")
    c.add_argument("--tail", type=int)

    for group, key in (("models", "ref"), ("processings", "name")):
        sub = groups.add_parser(group, add_help=False, allow_abbrev=False)
        cmds = sub.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
        c = cmds.add_parser("list", add_help=False, allow_abbrev=False)
        c.add_argument("--json", action="store_true")
        c = cmds.add_parser("show", add_help=False, allow_abbrev=False)
        c.add_argument(key)
        c.add_argument("--json", action="store_true")
    return p


def run_fast(args: list[str]) -> bool:
    """Run `args` when they are a well-formed read command; False otherwise
    (nothing was done: the typer command line takes them)."""
    if not args or not set(args) & {"jobs", "models", "processings"}:
        return False
    if "--help" in args or "-h" in args:
        return False
    try:
        ns = _parser().parse_args(args)
    except _NotFast:
        return False
    if (ns.group, ns.cmd) not in READS or (ns.executor not in (None, "docker", "process")):
        return False

    from picsellia_tui.cli import readcmds
    from picsellia_tui.cli.errors import report
    from picsellia_tui.cli.state import STATE

    STATE["config"] = ns.config
    if ns.data_dir is not None:
        STATE["overrides"]["data_dir"] = ns.data_dir
    if ns.executor is not None:
        STATE["overrides"]["executor"] = ns.executor
    try:
        if ns.group == "jobs" and ns.cmd == "list":
            readcmds.jobs_list(ns.status, ns.limit, ns.page, ns.json)
        elif ns.group == "jobs" and ns.cmd == "show":
            readcmds.jobs_show(ns.job_id, ns.json)
        elif ns.group == "jobs":
            readcmds.jobs_logs(ns.job_id, ns.run, ns.follow, ns.timestamps, ns.tail)
        elif ns.group == "models" and ns.cmd == "list":
            readcmds.models_list(ns.json)
        elif ns.group == "models":
            readcmds.models_show(ns.ref, ns.json)
        elif ns.cmd == "list":
            readcmds.processings_list(ns.json)
        else:
            readcmds.processings_show(ns.name, ns.json)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        sys.exit(report(exc))
    return True


READS = {
    ("jobs", "list"),
    ("jobs", "show"),
    ("jobs", "logs"),
    ("models", "list"),
    ("models", "show"),
    ("processings", "list"),
    ("processings", "show"),
}
