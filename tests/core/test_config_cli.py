"""Configuration lookup and the command line as a user meets it."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from picsellia_tui.engine.config import ConfigError, Settings, load_settings
from picsellia_tui.engine.hostconfig import HostConfig
from tests.core.helpers import FIXTURES, model_file

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_is_valid_and_documents_every_key() -> None:
    text = (ROOT / "config.example.toml").read_text()
    data = tomllib.loads(text)
    Settings(**data)
    for key in Settings.model_fields:
        assert f"{key} =" in text, f"config.example.toml does not document {key}"


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = tmp_path / "a.toml"
    a.write_text('organization = "from-a"\nconcurrency = 3\n')
    b = tmp_path / "b.toml"
    b.write_text('organization = "from-b"\n')
    monkeypatch.setenv("PICSELLIA_TUI_CONFIG", str(b))
    assert load_settings(a).organization == "from-a"
    assert load_settings().organization == "from-b"
    monkeypatch.setenv("PICSELLIA_TUI_ORGANIZATION", "from-env")
    s = load_settings(a)
    assert s.organization == "from-env" and s.concurrency == 3


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("concurrency = 0\n")
    with pytest.raises(ConfigError, match=r"concurrency: Input should be greater"):
        load_settings(bad)
    bad.write_text('default_host = "nope"\n')
    with pytest.raises(ConfigError, match="default_host 'nope' is not one of the hosts"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_one_hosts_table_keeps_the_local_host(tmp_path: Path) -> None:
    # Issue 11: one [[hosts]] table used to take `local` away ("default_host 'local'
    # is not one of the hosts").
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[hosts]]\nname = "gpu-box"\nurl = "ssh://ana@gpu-box.example:22"\n')
    s = load_settings(cfg)
    assert [h.name for h in s.hosts] == ["local", "gpu-box"]
    assert s.host(None).name == "local" and s.host(None).url == "local"
    cfg.write_text('default_host = "gpu-box"\n' + cfg.read_text())
    s = load_settings(cfg)
    assert s.host(None).name == "gpu-box" and s.host("local").url == "local"
    # a table named local replaces the implicit one
    cfg.write_text('[[hosts]]\nname = "local"\nurl = "unix:///run/other.sock"\n')
    assert [(h.name, h.url) for h in load_settings(cfg).hosts] == [
        ("local", "unix:///run/other.sock")
    ]


def _cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICSELLIA_TUI_")}
    env.update(
        PICSELLIA_TUI_DATA_DIR=str(tmp / "data"),
        PICSELLIA_TUI_EXECUTOR="process",
        PICSELLIA_TUI_PROCESSINGS_DIR=str(tmp / "procs"),
    )
    exe = Path(sys.executable).with_name("picsellia-tui")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_as_a_new_user(tmp_path: Path) -> None:
    import shutil

    (tmp_path / "procs").mkdir()
    shutil.copytree(FIXTURES / "proc_copy", tmp_path / "procs" / "test-copy")
    m = model_file(tmp_path)
    r = _cli(tmp_path, "models", "import", "m/v1", str(m), "--framework", "onnx")
    assert r.returncode == 0, r.stderr
    r = _cli(tmp_path, "launch", "test-copy", "m/v1", "-p", "lines=2", "--wait")
    assert r.returncode == 0, r.stderr
    assert "line 1" in r.stdout and "run #1: succeeded" in r.stdout
    r = _cli(tmp_path, "launch", "test-copy", "m/v1", "-p", "fail=true", "--wait")
    assert r.returncode == 1
    assert "RuntimeError: asked to fail" in r.stdout + r.stderr
    r = _cli(tmp_path, "jobs", "list", "--json")
    assert r.returncode == 0 and '"status": "failed"' in r.stdout
    r = _cli(tmp_path, "jobs", "logs", "1")
    assert r.stdout.splitlines()[1:3] == ["line 0", "line 1"]
    r = _cli(tmp_path, "jobs", "rerun", "1", "--wait")
    assert r.returncode == 0 and "run #2: succeeded" in r.stdout
    # errors: one line on stderr, non-zero exit, no traceback
    for args, expected in [
        (("launch", "test-copy", "m/v1", "-p", "lines=lots"), "is not an integer"),
        (("launch", "nope", "m/v1"), "no processing named 'nope'"),
        (("launch", "test-copy", "x/y"), "no model named 'x'"),
        (("jobs", "show", "99"), "no job 99"),
        (("models", "import", "m/v1", str(m)), "already has a version 'v1'"),
        (("processings", "create", str(tmp_path)), "no processing.toml in this folder"),
        (("--config", str(tmp_path / "nope.toml"), "jobs", "list"), "does not exist"),
    ]:
        r = _cli(tmp_path, *args)
        assert r.returncode != 0, args
        assert expected in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_version_and_help_import_nothing_heavy() -> None:
    code = (
        "import sys; sys.argv=['picsellia-tui','--version'];"
        "from picsellia_tui.cli import main as cli\n"
        "try:\n cli.main()\nexcept SystemExit: pass\n"
        "heavy=[m for m in ('textual','docker','sqlalchemy') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("picsellia-tui ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "No such option: --bogus"),
        (["--config"], "Option '--config' requires an argument."),
        (["launch"], "Missing argument"),
        (["jobs", "list", "--limit", "0"], "Invalid value for '--limit'"),
    ],
)
def test_usage_errors_are_one_clear_message(tmp_path: Path, args: list[str], message: str) -> None:
    r = _cli(tmp_path, *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "unexpected" not in r.stderr and "Traceback" not in r.stderr


def test_which_arguments_open_the_app_without_the_cli_parser() -> None:
    from picsellia_tui.entry import app_options

    assert app_options([]) == {}
    assert app_options(["--config", "c.toml", "--data-dir=/d"]) == {
        "config": "c.toml",
        "data_dir": "/d",
    }
    assert app_options(["--executor", "process"]) == {"executor": "process"}
    for args in (
        ["jobs", "list"],
        ["--help"],
        ["--config"],
        ["--config", "--help"],
        ["--config", "a", "--config", "b"],
        ["--version", "x"],
        ["demo"],
    ):
        assert app_options(args) is None, args


def test_the_app_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("concurrency = 0\n")
    r = _cli(tmp_path, "--config", str(bad))
    assert r.returncode == 2, r.stderr
    # The app may have painted its first frame (the settings load behind it).
    assert f"error: config in {bad}: concurrency" in r.stderr.strip().splitlines()[-1]


def test_swarm_host_needs_an_api_url_and_gets_its_listen_address(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[hosts]]\nname = "cluster"\nurl = "ssh://ana@manager"\nkind = "swarm"\n')
    with pytest.raises(ConfigError, match="a swarm host needs api_url"):
        load_settings(cfg)
    cfg.write_text(cfg.read_text() + 'api_url = "http://10.0.0.5:18090"\n')
    host = load_settings(cfg).host("cluster")
    assert host.kind == "swarm" and host.listen_address == ("10.0.0.5", 18090)
    cfg.write_text(cfg.read_text() + 'api_listen = "0.0.0.0:18091"\n')
    assert load_settings(cfg).host("cluster").listen_address == ("0.0.0.0", 18091)
    cfg.write_text('[[hosts]]\nname = "box"\nurl = "local"\napi_url = "http://h:1"\n')
    with pytest.raises(ConfigError, match="apply to kind = swarm"):
        load_settings(cfg)
    assert HostConfig(name="local", url="local").listen_address is None
