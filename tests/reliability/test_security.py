"""Security: secret parameters never appear in the log file, the database (nor its
WAL), `jobs show --json`, exported logs or the TUI; containers run unprivileged,
without the Docker socket, without network unless the processing asks; the data dir
is created 0700 and the database 0600; TLS is verified for tcp:// hosts; an unknown or
changed SSH host key is refused with a clear message."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import anyio
import pytest

from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.executors.base import HostUnreachable
from picsellia_tui.engine.hosts import HostConfig, connect
from picsellia_tui.engine.logtext import MASK, strip_ansi
from picsellia_tui.storage.logfile.reader import LogReader
from picsellia_tui.storage.logfile.search import export
from tests.reliability.helpers import (
    SECRET,
    Tally,
    cli_env,
    config_file,
    expect_refusal,
    integrity,
    make_settings,
    message_problem,
    model_file,
    run_cli,
)

pytestmark = pytest.mark.anyio
AREA = "security"


def _all_bytes_under(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()]


@pytest.fixture(params=["process", "docker"])
def executor_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "docker":
        request.getfixturevalue("probe_image")
        request.node.add_marker(pytest.mark.docker)
    return str(request.param)


async def test_secrets_never_stored_or_shown_in_clear(
    tmp_path: Path, tally: Tally, executor_kind: str, workspace_containers: list[str]
) -> None:
    s = make_settings(tmp_path, executor=executor_kind)
    async with Engine(s, supervise=True) as e:
        workspace_containers.append(e.ws.workspace_id)
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        ok = await e.launch("rel-probe", "m/v1", {"token": SECRET, "lines": 3})
        bad = await e.launch("rel-probe", "m/v1", {"token": SECRET, "fail": True})
        with anyio.fail_after(120):
            runs = [await e.wait_run(j.runs[0].id) for j in (ok, bad)]
        assert [r.status for r in runs] == ["succeeded", "failed"], runs[1].error_summary
        # The code did print it: the log holds the mask where the secret was.
        with LogReader(Path(runs[0].log_path)) as reader:
            texts = [r.text for r in reader.records(0)]
        assert f"using token {MASK}" in texts and f"split [{MASK}] end" in texts
        assert f"token in stderr: {MASK}" in texts
        assert "asked to fail (token " + MASK in (runs[1].error_summary or "")
        rerun = await e.rerun(bad.id)  # the secret survives a re-run, still masked
        with anyio.fail_after(60):
            r3 = await e.wait_run(rerun.id)
        assert r3.status == "failed" and MASK in (r3.error_summary or "")
        views = [await e.job(ok.id), await e.job(bad.id)]
        assert all(SECRET not in v.model_dump_json() for v in views)
        exported = tmp_path / "exports" / "run.log"
        with LogReader(Path(runs[0].log_path)) as reader:
            export(reader, exported, timestamps=True, clean=strip_ansi)
    places: dict[str, list[tuple[Path, bytes]]] = {
        "data dir (database, WAL, logs, blobs, runs)": _all_bytes_under(s.data_dir),
        "exported log": [(exported, exported.read_bytes())],
    }
    cfg = config_file(s, tmp_path / "config.toml")
    for args in (["jobs", "show", str(ok.id), "--json"], ["jobs", "show", str(bad.id)],
                 ["jobs", "list", "--json"], ["jobs", "logs", str(ok.id)],
                 ["jobs", "logs", str(bad.id), "--timestamps"]):  # fmt: skip
        out = run_cli(["--config", str(cfg), *args], env=cli_env())
        assert out.returncode == 0, out.stderr
        places[" ".join(args)] = [(Path("-"), (out.stdout + out.stderr).encode())]
    leaks = []
    needles = (SECRET.encode(), SECRET.encode("utf-16-le"))
    for what, blobs in places.items():
        clean = not any(n in data for _, data in blobs for n in needles)
        tally.bad(AREA, clean, f"secret found in {what}")
        if not clean:
            leaks.append(what + ": " + ", ".join(str(p) for p, d in blobs if needles[0] in d))
    assert not leaks, leaks
    assert integrity(s.database_path) == "ok"


async def test_tui_shows_the_mask_not_the_secret(tmp_path: Path, tally: Tally) -> None:
    if not Path(__file__).resolve().parents[2].joinpath("picsellia_tui/tui/app.py").exists():
        pytest.skip("no TUI yet")
    from textual.widgets import TabbedContent

    from picsellia_tui.tui.app import AppEngineHandle, PicselliaApp
    from picsellia_tui.tui.widgets.log_view import LogView

    handle = AppEngineHandle(make_settings(tmp_path), supervise=True)
    handle.start()
    try:
        f = model_file(tmp_path)
        handle.call(lambda e: e.import_version("m", "v1", [f], framework="onnx"))
        job = handle.call(lambda e: e.launch("rel-probe", "m/v1", {"token": SECRET, "lines": 2}))
        handle.call(lambda e: e.wait_run(job.runs[0].id))
        app = PicselliaApp(handle, frozen_time=True)
        async with app.run_test(size=(120, 36)) as pilot:

            def text() -> str:
                strips = app.screen._compositor.render_strips()
                return "\n".join("".join(seg.text for seg in strip) for strip in strips)

            for _ in range(200):
                if app.screen.query(TabbedContent):
                    break
                await pilot.pause(0.05)
            await pilot.press("3")  # the Jobs tab, its newest job selected
            log = app.screen.query_one(LogView)
            for _ in range(300):
                if f"using token {MASK}" in text():
                    break
                await pilot.pause(0.05)
            screen = text()
            assert f"using token {MASK}" in screen, screen
            assert SECRET not in screen
            await pilot.press("enter", "g")  # into the log, from the top
            await pilot.pause(0.3)
            assert SECRET not in text()
            assert all(SECRET not in t for t in log.log_lines.visible_text())
        tally.bad(AREA, True, "TUI")
    finally:
        handle.stop()


# --------------------------------------------------------------------- confinement


def _probe(texts: list[str]) -> dict[str, Any]:
    line = next(t for t in texts if t.startswith("PROBE "))
    return dict(json.loads(line.removeprefix("PROBE ")))


CAP_BITS = {"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17,
            "CAP_SYS_PTRACE": 19, "CAP_SYS_ADMIN": 21, "CAP_MKNOD": 27, "CAP_SYS_BOOT": 22}  # fmt: skip


@pytest.mark.docker
async def test_containers_unprivileged_no_socket_no_network_unless_asked(
    tmp_path: Path,
    tally: Tally,
    probe_image: str,
    docker_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    workspace_containers: list[str],
) -> None:
    from picsellia_tui.engine.executors.docker_executor import DockerExecutor

    kept: list[str] = []

    async def keep(self: Any, ref: str) -> None:  # inspected below
        kept.append(ref)

    monkeypatch.setattr(DockerExecutor, "remove", keep)
    s = make_settings(tmp_path, executor="docker")
    # The same processing, asking for the network.
    net = s.processings_dir / "rel-probe-net"
    shutil.copytree(s.processings_dir / "rel-probe", net)
    toml = net / "processing.toml"
    toml.write_text(
        toml.read_text()
        .replace('name = "rel-probe"', 'name = "rel-probe-net"')
        .replace(
            'required_files = ["*.onnx"]',
            'required_files = ["*.onnx"]\nnetwork = true\nwritable_rootfs = true\n'
            'capabilities = ["CHOWN"]',
        )
    )
    async with Engine(s, supervise=True) as e:
        workspace_containers.append(e.ws.workspace_id)
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        plain = await e.launch("rel-probe", "m/v1", {"logs": "probe", "token": SECRET})
        asked = await e.launch("rel-probe-net", "m/v1", {"logs": "probe"})
        with anyio.fail_after(120):
            runs = [await e.wait_run(j.runs[0].id) for j in (plain, asked)]
        assert [r.status for r in runs] == ["succeeded", "succeeded"]
        reports = []
        for r in runs:
            with LogReader(Path(r.log_path)) as reader:
                reports.append(_probe([x.text for x in reader.records(0)]))
        shown = (await e.processing("rel-probe-net")).constraints
    p, n = reports
    checks: dict[str, bool] = {}
    cap = int(p["cap_eff"], 16)
    for name, bit in CAP_BITS.items():
        checks[f"no {name}"] = not cap & (1 << bit)
    # Issue 16 item 7: every capability dropped (root in the container could chown,
    # override file permissions, setuid...), the root file system read-only.
    checks["no capability at all"] = cap == 0
    checks["chown refused"] = p["chown"].startswith("refused")
    checks["root file system read-only"] = p["rootfs_write"].startswith("refused") and p[
        "etc_write"
    ].startswith("refused")
    checks["/tmp writable"] = p["tmp_write"] == "allowed"
    checks["outputs writable"] = p["outputs_write"] == "allowed"
    checks["asked: CHOWN only"] = int(n["cap_eff"], 16) == 1 and n["chown"] == "allowed"
    checks["asked: writable root"] = n["rootfs_write"] == "allowed"
    checks["asked: shown in constraints"] = shown.writable_rootfs and shown.capabilities == [
        "CHOWN"
    ]
    checks["no_new_privs"] = p["no_new_privs"] == "1"
    checks["no docker socket"] = p["docker_sock"] == [] and not any(
        "docker.sock" in m for m in p["mounts"]
    )
    checks["no network unless asked"] = p["interfaces"] == ["lo"] and p["connect"] != "connected"
    checks["network when asked"] = any(i.startswith("eth") for i in n["interfaces"])
    checks["mknod refused"] = p["mknod"].startswith("refused")
    checks["no host devices"] = not any(
        d.startswith(("sd", "vd", "nvme", "mem", "kmsg")) for d in p["devices"]
    )
    checks["secret not in context.json"] = p["context_has_token"] is False
    checks["only contract env"] = not any(
        k.startswith(("PICSELLIA_TUI_", "DOCKER_", "SSH_")) for k in p["env"]
    ) and {"PICSELLIA_CONTEXT", "job_id", "run_id", "organization_id", "TOKEN_FILE"} <= set(
        p["env"]
    )
    # Issue 16 item 4: the secret is a 0400 file on a tmpfs, not in the environment.
    checks["secret not in the environment"] = "TOKEN" not in p["env"]
    checks["secret file 0400 on a tmpfs"] = p["secret_file"] == {
        "mode": "0o400",
        "fs": "tmpfs",
        "at": "/run/secrets",
    }
    by_ref = {c.id: c for c in docker_client.containers.list(all=True) if c.id in kept}
    attrs = json.dumps(by_ref[runs[0].ref].attrs)
    checks["secret not in docker inspect"] = SECRET not in attrs
    stream, _ = docker_client.api.get_archive(runs[0].ref, "/picsellia/.secrets")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        staged = [m for m in tar.getmembers() if m.isfile()]
    checks["staged secret emptied"] = bool(staged) and all(m.size == 0 for m in staged)
    for ref, want_net in zip([runs[0].ref, runs[1].ref], ("none", "bridge"), strict=True):
        hc = by_ref[ref].attrs["HostConfig"]
        checks[f"{want_net}: not privileged"] = hc["Privileged"] is False
        checks[f"{want_net}: network mode"] = hc["NetworkMode"] == want_net
        mounts = by_ref[ref].attrs["Mounts"]
        checks[f"{want_net}: no binds, only its own /picsellia volume"] = not hc.get("Binds") and [
            (m["Type"], m["Destination"]) for m in mounts
        ] == [("volume", "/picsellia")]
        checks[f"{want_net}: cap_drop ALL"] = hc.get("CapDrop") == ["ALL"]
        checks[f"{want_net}: no-new-privileges"] = "no-new-privileges" in str(hc["SecurityOpt"])
        checks[f"{want_net}: limits"] = bool(hc["Memory"]) and bool(hc["PidsLimit"])
        checks[f"{want_net}: not host pid/ipc"] = (
            hc.get("PidMode", "") != "host" and hc.get("IpcMode") != "host"
        )
    for name, ok in checks.items():
        klass = "secrets visible to another user" if "secret" in name else "confinement"
        tally.bad(AREA, ok, f"confinement: {name}", klass=klass)
    assert all(checks.values()), {k: v for k, v in checks.items() if not v}


@pytest.mark.docker
async def test_an_out_of_memory_kill_says_so(
    tmp_path: Path, tally: Tally, probe_image: str, workspace_containers: list[str]
) -> None:
    """Issue 16 item 7: an OOM kill said only 'exited with code 137'."""
    s = make_settings(tmp_path, executor="docker", default_memory="64m")
    async with Engine(s, supervise=True) as e:
        workspace_containers.append(e.ws.workspace_id)
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("rel-probe", "m/v1", {"alloc_mb": 400})
        with anyio.fail_after(120):
            run = await e.wait_run(job.runs[0].id)
    first = (run.error_summary or "").splitlines()[0] if run.error_summary else ""
    ok = run.status == "failed" and run.exit_code == 137
    ok = ok and first == "killed: out of memory (limit 64m)"
    tally.bad(AREA, ok, f"out of memory: {run.status} {first!r}", klass="confinement")
    assert ok, (run.status, run.exit_code, run.error_summary)


@pytest.mark.docker
async def test_an_adopted_run_keeps_its_own_start_and_end(
    tmp_path: Path, tally: Tally, probe_image: str, workspace_containers: list[str]
) -> None:
    """Issue 16 item 13: a run adopted by a later engine recorded the adoption time
    as its end (a 25 s run recorded as 48.7 s)."""
    s = make_settings(tmp_path, executor="docker")
    async with Engine(s, supervise=True) as e:
        workspace_containers.append(e.ws.workspace_id)
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("rel-probe", "m/v1", {"sleep": 2})
        with anyio.fail_after(60):
            await e.wait_run(job.runs[0].id, lambda r: r.status == "running")
    await anyio.sleep(10)  # the container exits meanwhile; no engine watches it
    async with Engine(s, supervise=True) as e:
        with anyio.fail_after(60):
            run = await e.wait_run(job.runs[0].id)
    assert run.status == "succeeded", run.error_summary
    assert run.duration_s is not None
    ok = run.duration_s < 8  # the container ran ~2 s; adoption came ~10 s later
    tally.bad(AREA, ok, f"adopted run recorded {run.duration_s:.1f} s long")
    assert ok, run.duration_s


# ----------------------------------------------------------------- files on disk


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


async def test_data_dir_0700_database_0600_even_with_a_loose_umask(
    tmp_path: Path, tally: Tally
) -> None:
    # The data dir is made by the tool here; an existing one is never chmod'ed
    # (test_local_users.py).
    data = tmp_path / "data"
    s = make_settings(tmp_path)
    cfg = config_file(s, tmp_path / "config.toml")
    src = model_file(tmp_path)
    # A whole session from the command line under umask 000.
    script = (
        f"umask 000; {Path(sys.executable).with_name('picsellia-tui')} --config {cfg} "
        f"models import m/v1 {src} --framework onnx >/dev/null && "
        f"{Path(sys.executable).with_name('picsellia-tui')} --config {cfg} "
        f"launch rel-probe m/v1 -p token={SECRET} --wait >/dev/null"
    )
    out = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, env=cli_env(), timeout=120
    )
    assert out.returncode == 0, out.stderr
    checks = {
        "data dir 0700": _mode(data) == 0o700,
        "database 0600": _mode(s.database_path) == 0o600,
        "secret.key 0600": _mode(data / "secret.key") == 0o600,
    }
    for side in ("-wal", "-shm"):
        p = s.database_path.with_name(s.database_path.name + side)
        if p.exists():
            checks[f"database{side} 0600"] = _mode(p) == 0o600
    for sub in ("logs", "blobs", "runs", "scratch"):
        checks[f"{sub}/ 0700"] = _mode(data / sub) == 0o700
    # Nothing under the data dir is reachable by others (0700 at the top is what
    # guards it; files inside are not world-writable either).
    checks["nothing world-writable"] = not any(
        _mode(p) & 0o002 for p in data.rglob("*") if not p.is_symlink()
    )
    for name, ok in checks.items():
        tally.bad(AREA, ok, f"permissions: {name}")
    assert all(checks.values()), [k for k, v in checks.items() if not v]


# ------------------------------------------------------------------- remote hosts


@pytest.mark.docker
def test_tcp_hosts_verify_tls(
    tls_proxy: Any, tally: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert HostConfig(url="tcp://h:2376", tls_ca=tls_proxy.ca).tls_verify is True  # the default
    expect_refusal(
        tally,
        AREA,
        lambda: connect(tls_proxy.host(tls_ca=tls_proxy.other_ca), timeout=10),
        HostUnreachable,
        "tcp:// host with a certificate from another CA",
    )
    # An environment CA bundle that would accept the server does not override the host's CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_proxy.ca))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tls_proxy.ca))
    exc = expect_refusal(
        tally,
        AREA,
        lambda: connect(tls_proxy.host(tls_ca=tls_proxy.other_ca), timeout=10),
        HostUnreachable,
        "tcp:// host, wrong CA, CA bundle in the environment",
    )
    assert "certificate verification failed" in str(exc)
    # A TLS port spoken to in plain HTTP is not silently accepted either.
    expect_refusal(
        tally,
        AREA,
        lambda: connect(HostConfig(name="plain", url=tls_proxy.url), timeout=10),
        HostUnreachable,
        "tcp:// TLS host without TLS settings",
    )
    client = connect(tls_proxy.host(), timeout=10)  # the right CA: accepted
    try:
        assert client.api.base_url.startswith("https://")
    finally:
        client.close()


@pytest.mark.docker
async def test_tls_failure_fails_the_run_with_one_line_and_starts_nothing(
    tmp_path: Path, tls_proxy: Any, tally: Tally, docker_client: Any
) -> None:
    host = tls_proxy.host(tls_ca=tls_proxy.other_ca).model_copy(update={"name": "lab"})
    s = make_settings(tmp_path, executor="docker", hosts=[host], default_host="lab")
    async with Engine(s, supervise=True) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("rel-probe", "m/v1", {"token": SECRET})
        with anyio.fail_after(45):  # at once: retrying cannot fix a bad certificate
            run = await e.wait_run(job.runs[0].id)
        ws = e.ws.workspace_id
    first = (run.error_summary or "").splitlines()[0] if run.error_summary else ""
    ok = run.status == "failed" and "certificate verification failed" in first
    ok = ok and message_problem(first) is None
    tally.bad(AREA, ok, f"run on a host with a bad certificate: {first!r}")
    assert ok, run
    assert not docker_client.containers.list(
        all=True, filters={"label": f"picsellia-tui.workspace={ws}"}
    )


def _ssh_wrapper(tmp: Path, sshd: Any, known_hosts: str) -> Path:
    """An `ssh` for the test's sshd with the given known_hosts content."""
    conf = (sshd.bin_dir.parent / "ssh_config").read_text()
    kh = tmp / "known_hosts"
    kh.write_text(known_hosts)
    new_conf = tmp / "ssh_config"
    new_conf.write_text(
        "\n".join(
            f"  UserKnownHostsFile {kh}" if "UserKnownHostsFile" in ln else ln
            for ln in conf.splitlines()
        )
    )
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    real = shutil.which("ssh", path=os.environ["PATH"].replace(f"{sshd.bin_dir}{os.pathsep}", ""))
    (bin_dir / "ssh").write_text(f'#!/bin/sh\nexec {real} -F {new_conf} "$@"\n')
    (bin_dir / "ssh").chmod(0o755)
    return bin_dir


@pytest.mark.docker
def test_ssh_unknown_or_changed_host_key_refused(
    tmp_path: Path, sshd_host: Any, tally: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = HostConfig(name="box", url=sshd_host.url)
    monkeypatch.setenv("PATH", f"{sshd_host.bin_dir_unknown_key}{os.pathsep}{os.environ['PATH']}")
    exc = expect_refusal(
        tally, AREA, lambda: connect(host, timeout=10), HostUnreachable, "ssh: unknown host key"
    )
    assert "host key unknown" in str(exc) and "ssh-keyscan" in str(exc)
    # A different key recorded for that host: a possible man in the middle.
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, key = other.with_suffix(".pub").read_text().split()[:2]
    wrapper = _ssh_wrapper(tmp_path, sshd_host, f"[127.0.0.1]:{sshd_host.port} {kind} {key}\n")
    monkeypatch.setenv("PATH", f"{wrapper}{os.pathsep}{os.environ['PATH']}")
    exc = expect_refusal(
        tally, AREA, lambda: connect(host, timeout=10), HostUnreachable, "ssh: changed host key"
    )
    assert "CHANGED" in str(exc) and "ssh-keygen -R" in str(exc)


@pytest.mark.docker
async def test_run_on_a_host_with_an_unknown_key_fails_at_once(
    tmp_path: Path, sshd_host: Any, tally: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{sshd_host.bin_dir_unknown_key}{os.pathsep}{os.environ['PATH']}")
    host = HostConfig(name="box", url=sshd_host.url)
    s = make_settings(tmp_path, executor="docker", hosts=[host], default_host="box")
    async with Engine(s, supervise=True) as e:
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("rel-probe", "m/v1")
        with anyio.fail_after(45):  # not retried for 90 s like a daemon restart
            run = await e.wait_run(job.runs[0].id)
    first = (run.error_summary or "").splitlines()[0] if run.error_summary else ""
    ok = run.status == "failed" and "host key unknown" in first and message_problem(first) is None
    tally.bad(AREA, ok, f"run on an ssh host with an unknown key: {first!r}")
    assert ok, run


@pytest.mark.docker
async def test_a_secret_cut_in_two_by_a_long_line_is_still_masked(
    tmp_path: Path, tally: Tally, probe_image: str, workspace_containers: list[str]
) -> None:
    """Lines over 1 MiB are stored in pieces; a secret straddling the cut leaked as
    two halves (each too short to match)."""
    s = make_settings(tmp_path, executor="docker")
    async with Engine(s, supervise=True) as e:
        workspace_containers.append(e.ws.workspace_id)
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        job = await e.launch("rel-probe", "m/v1", {"logs": "secret-at-cut", "token": SECRET})
        with anyio.fail_after(90):
            run = await e.wait_run(job.runs[0].id)
    assert run.status == "succeeded", run.error_summary
    data = Path(run.log_path).read_bytes()
    halves = [SECRET[:n] for n in range(5, len(SECRET))] + [
        SECRET[-n:] for n in range(5, len(SECRET))
    ]
    leaked = [h for h in halves if h.encode() in data]
    tally.bad(AREA, not leaked, f"secret cut by a long line leaked as {leaked[:2]}")
    assert not leaked
    with LogReader(Path(run.log_path)) as reader:
        texts = [r.text for r in reader.records(0)]
    assert sum(t.count(MASK) for t in texts) >= 8  # every straddling secret masked


def test_mask_across_equals_masking_the_joined_line() -> None:
    import re as _re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from picsellia_tui.engine.logtext import mask_across, secret_pattern

    rx = secret_pattern([SECRET, "abcd"])
    assert rx is not None

    @settings(max_examples=300, deadline=None)
    @given(
        st.text("xyzabcd" + SECRET[:6], max_size=40), st.text("xyzabcd" + SECRET[-6:], max_size=40)
    )
    def prop(a: str, b: str) -> None:
        a2, b2, carry = mask_across(a, b, rx)
        assert a2 + b2 == rx.sub(MASK, a + b)
        assert SECRET not in a2 and SECRET not in b2 and 0 <= carry <= len(b)

    prop()
    for cut in range(1, len(SECRET)):
        line = "x" * 5 + SECRET + "y" * 5
        a2, b2, _ = mask_across(line[: 5 + cut], line[5 + cut :], rx)
        assert a2 == "x" * 5 + MASK and b2 == "y" * 5
        assert not _re.search("|".join(map(_re.escape, (SECRET[:4], SECRET[-4:]))), a2 + b2)
