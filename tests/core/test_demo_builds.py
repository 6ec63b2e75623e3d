"""`picsellia-tui demo` counts its image builds over all of them (issue 11: it
printed "1/7, 2/6, ..." as each built image left the list it counted)."""

from __future__ import annotations

import re

import pytest

from picsellia_tui.cli.demo import build_images

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Builder:
    def __init__(self, broken: set[str]) -> None:
        self.broken = broken
        self.built: list[str] = []

    async def build_processing(self, name: str) -> None:
        if name in self.broken:
            raise RuntimeError(f"{name}: pip install failed\nmore lines")
        self.built.append(name)


async def test_demo_counts_builds_over_all_images(capsys: pytest.CaptureFixture[str]) -> None:
    engine = Builder({"b"})
    left = await build_images(engine, ["a", "b", "c", "d"])
    err = capsys.readouterr().err
    assert re.findall(r"building image (\d+/\d+): (\w)", err) == [
        ("1/4", "a"),
        ("2/4", "b"),
        ("3/4", "c"),
        ("4/4", "d"),
    ]
    assert "demo: b did not build: b: pip install failed\n" in err
    assert left == ["b"] and engine.built == ["a", "c", "d"]
