"""Swarm runs confined like the Docker executor's containers (docs/security.md):
checked on the service's spec and from inside a real task by the reliability probe
(tests/fixtures/reliability_probe, `logs = "probe"`), which tries to gain
privileges, write outside its folders, reach the outside and the engine's host.

A processing without network (`network = false`, the default) has one network: the
workspace's internal overlay for such runs, where the API gateway is
(docs/cluster.md); it cannot reach the outside nor the engine's host directly. The same probe asking for network,
a writable root and CHOWN gets exactly that.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest

from picsellia_tui.engine.core import Engine
from picsellia_tui.engine.executors.swarm_executor import service_spec_mounts
from picsellia_tui.engine.executors.swarm_network import LABEL_NETWORK_FOR
from picsellia_tui.storage.logfile.reader import LogReader
from tests.core.helpers import model_file
from tests.docker.swarm_env import (
    ROOT,
    as_async,
    containers,
    networks,
    run_containers,
    services,
    swarm,
    swarm_settings_for,
    wait_for,
)

__all__ = ["swarm"]  # the session fixture, used here
pytestmark = [pytest.mark.anyio, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]

PROBE_DIR = ROOT / "tests/fixtures/reliability_probe"
# Its own tag: the reliability suite builds the shared one from other checkouts.
PROBE_IMAGE = "picsellia-tui/rel-probe-swarm:1.0.0"
SECRET = "swarm-secret-8f2c1d"
CAP_CHOWN = 1 << 0


@pytest.fixture(scope="session")
def probe_image(docker_client: Any) -> str:
    docker_client.images.build(path=str(PROBE_DIR), tag=PROBE_IMAGE, rm=True)
    return PROBE_IMAGE


def _add_probes(processings: Path) -> None:
    """rel-probe (defaults: no network, read-only root, no capability) and
    rel-probe-net (network, writable root, CHOWN), on this test's image."""
    for name, extra in (
        ("rel-probe", ""),
        ("rel-probe-net", 'network = true\nwritable_rootfs = true\ncapabilities = ["CHOWN"]\n'),
    ):
        dest = processings / name
        shutil.copytree(PROBE_DIR, dest)
        toml = dest / "processing.toml"
        toml.write_text(
            toml.read_text()
            .replace('name = "rel-probe"', f'name = "{name}"')
            .replace('image = "picsellia-tui/rel-probe:1.0.0"', f'image = "{PROBE_IMAGE}"')
            .replace('required_files = ["*.onnx"]', f'required_files = ["*.onnx"]\n{extra}')
        )


def _probe(log_path: str) -> dict[str, Any]:
    with LogReader(Path(log_path)) as reader:
        texts = [r.text for r in reader.records(0)]
    line = next(t for t in texts if t.startswith("PROBE "))
    return dict(json.loads(line.removeprefix("PROBE ")))


async def test_swarm_task_confined_and_offline_unless_asked(
    tmp_path: Path, docker_client: Any, swarm: str, probe_image: str
) -> None:
    settings = swarm_settings_for(tmp_path, docker_client)
    _add_probes(settings.processings_dir)
    api_url = settings.host("cluster").api_url
    engine_addr = api_url.removeprefix("http://")  # the engine's host, port listening
    async with Engine(settings, supervise=True) as e:
        ws = e.ws.workspace_id
        await e.import_version("m", "v1", [model_file(tmp_path)], framework="onnx")
        params = {"logs": "probe", "sleep": "4", "reach": engine_addr}
        plain = await e.launch("rel-probe", "m/v1", {**params, "token": SECRET})
        asked = await e.launch("rel-probe-net", "m/v1", params)
        # Each service's spec is read while it runs (the first may be over when
        # the second starts).
        specs: dict[str, Any] = {}
        for job in (plain, asked):
            await e.wait_run(job.runs[0].id, lambda r: r.status == "running")
            for svc in services(docker_client, ws):
                specs.setdefault(svc.attrs["Spec"]["Labels"]["picsellia-tui.job_id"], svc.attrs)
        run_nets = networks(docker_client, ws)
        with anyio.fail_after(120):
            runs = [await e.wait_run(j.runs[0].id) for j in (plain, asked)]
        for r in runs:
            assert r.status == "succeeded", r.error_summary
        p, n = (_probe(r.log_path) for r in runs)

        # The service specs: nothing but what the processing asks.
        cs = specs[str(plain.id)]["Spec"]["TaskTemplate"]["ContainerSpec"]
        assert cs["CapabilityDrop"] == ["ALL"] and not cs.get("CapabilityAdd")
        assert cs["ReadOnly"] is True and cs["Init"] is True
        assert not cs.get("Privileges") and not cs.get("User")  # the image's own USER
        assert {m["Type"] for m in service_spec_mounts(specs[str(plain.id)]["Spec"])} == {"tmpfs"}
        (secret,) = cs["Secrets"]
        assert secret["File"]["Name"] == "TOKEN" and secret["File"]["Mode"] == 0o400
        assert "TOKEN_FILE=/run/secrets/TOKEN" in cs["Env"]
        assert SECRET not in json.dumps(specs[str(plain.id)])
        (net,) = specs[str(plain.id)]["Spec"]["TaskTemplate"]["Networks"]
        (runs_net,) = run_nets  # the workspace's network for runs without network
        runs_net.reload()
        assert net["Target"] == runs_net.id
        assert runs_net.attrs["Driver"] == "overlay" and runs_net.attrs["Internal"] is True
        assert runs_net.attrs["Labels"][LABEL_NETWORK_FOR] == ws[:12]
        ask = specs[str(asked.id)]["Spec"]["TaskTemplate"]["ContainerSpec"]
        assert ask["CapabilityDrop"] == ["ALL"] and ask["CapabilityAdd"] == ["CHOWN"]
        assert not ask.get("ReadOnly")
        assert not specs[str(asked.id)]["Spec"]["TaskTemplate"].get("Networks")

        # From inside the task.
        assert int(p["cap_eff"], 16) == 0 and int(p["cap_bnd"], 16) == 0
        assert p["no_new_privs"] == "1"
        assert p["chown"].startswith("refused") and p["mknod"].startswith("refused")
        assert p["rootfs_write"].startswith("refused") and p["etc_write"].startswith("refused")
        assert p["tmp_write"] == "allowed" and p["outputs_write"] == "allowed"
        assert p["docker_sock"] == [] and not any("docker.sock" in m for m in p["mounts"])
        assert p["interfaces"] == ["eth0", "lo"], p["interfaces"]
        assert p["connect"] != "connected"  # the outside
        assert p["reach"].startswith("failed"), p["reach"]  # the engine's host, directly
        assert p["secret_file"]["mode"] == "0o400" and p["secret_file"]["fs"] == "tmpfs"
        assert p["secret_file"]["at"].startswith("/run/secrets")
        assert "TOKEN" not in p["env"]
        assert not any(k.startswith(("PICSELLIA_TUI_", "DOCKER_", "SSH_")) for k in p["env"])
        assert int(n["cap_eff"], 16) == CAP_CHOWN and n["chown"] == "allowed"
        assert n["rootfs_write"] == "allowed" and n["no_new_privs"] == "1"
        assert n["reach"] == "connected"  # with network: the host is there
        assert any(i.startswith("eth") for i in n["interfaces"])

        # Nothing of either run left: services, task containers, secrets (the
        # workspace's network and its gateway stay for the next runs).
        await wait_for("services gone", as_async(lambda: not services(docker_client, ws)))
        await wait_for("containers gone", as_async(lambda: not run_containers(docker_client, ws)))
        # The runs network's gateway and keeper stay for the next runs.
        kept = [
            (c.attrs.get("Labels") or {}).get(LABEL_NETWORK_FOR)
            for c in containers(docker_client, ws)
        ]
        assert kept == [ws[:12], ws[:12]], kept
        label = {"label": f"picsellia-tui.workspace={ws}"}
        await wait_for(
            "secrets gone", as_async(lambda: not docker_client.api.secrets(filters=label))
        )
