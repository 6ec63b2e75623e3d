"""The Swarm executor's service spec, without a daemon: what a task asks of Swarm."""

from __future__ import annotations

from pathlib import Path

import pytest

from picsellia_tui.engine.executors.base import ApiAccess, Limits, RunSpec
from picsellia_tui.engine.executors.swarm_executor import SwarmExecutor
from picsellia_tui.engine.hosts import HostConfig


def _spec(tmp_path: Path, limits: Limits) -> RunSpec:
    return RunSpec(
        run_id="ws-1",
        job_id="1",
        attempt=1,
        name="ptui-ws-1",
        image="img:1",
        command=[],
        env={},
        context_json=b"{}",
        inputs=[],
        labels={"picsellia-tui.workspace": "ws"},
        limits=limits,
        api=ApiAccess(tmp_path, "http://127.0.0.1:1", token="t" * 16, files_dir=tmp_path),
    )


@pytest.mark.parametrize("reservations", [True, False])
def test_limits_and_reservations(tmp_path: Path, reservations: bool) -> None:
    host = HostConfig(
        name="c", kind="swarm", api_url="http://10.0.0.5:18090", reservations=reservations
    )
    ex = SwarmExecutor(host, "engine-1")
    limits = Limits(cpu=1.5, memory_bytes=2**30, capabilities=("CHOWN",), writable_rootfs=True)
    template = ex._task_template(_spec(tmp_path, limits), ["python", "main.py"], str(tmp_path))
    res = template["Resources"]
    assert res["Limits"]["NanoCPUs"] == 1_500_000_000 and res["Limits"]["MemoryBytes"] == 2**30
    if reservations:  # Swarm queues what does not fit
        assert res["Reservations"] == {"NanoCPUs": 1_500_000_000, "MemoryBytes": 2**30}
    else:  # limits only (moby #52652)
        assert not res.get("Reservations")
    cs = template["ContainerSpec"]
    assert cs["CapabilityDrop"] == ["ALL"] and cs["CapabilityAdd"] == ["CHOWN"]
    assert not cs.get("ReadOnly") and not cs.get("User")
