"""`picsellia-tui demo`: a workspace with real small models, ready to launch on.

The models are trained at demo time on scikit-learn's bundled digits data set
(nothing is downloaded). Running it again is harmless: what exists is kept.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import platformdirs

from picsellia_tui.engine.config import APP, Settings, load_settings
from picsellia_tui.humanize import first_line


def demo_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP)) / "demo"


def prepare_demo(config: Path | None, overrides: dict[str, Any], *, build: bool = True) -> Settings:
    import anyio

    from picsellia_tui.engine.core import Engine
    from picsellia_tui.engine.hosts import probe

    root = Path(overrides.get("data_dir") or demo_dir())
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    cfg = config or root / "config.toml"
    if config is None and not cfg.exists():
        local = load_settings(None, data_dir=root).host(None)
        executor = "docker" if probe(local).reachable else "process"
        cfg.write_text(
            "# The demo workspace. Every key is documented in config.example.toml.\n"
            'organization = "demo"\n'
            f'data_dir = "{root}"\n'
            f'executor = "{executor}"\n'
        )
        if executor == "process":
            print(
                "demo: no Docker daemon answers; processings run as local processes "
                '(set executor = "docker" in ' + str(cfg) + " once Docker is up)",
                file=sys.stderr,
            )
    settings = load_settings(cfg, **{k: v for k, v in overrides.items() if k != "data_dir"})

    async def seed() -> None:
        async with Engine(settings) as engine:
            have = {v.ref for v in await engine.versions()}
            from picsellia_tui.demo.models import build_demo_models

            with tempfile.TemporaryDirectory() as tmp:
                for m in build_demo_models(Path(tmp)):
                    ref = f"{m.model_name}/{m.version_name}"
                    if ref in have:
                        continue
                    v = await engine.import_version(
                        m.model_name,
                        m.version_name,
                        [m.files_dir],
                        framework=m.framework,
                        labels=m.labels,
                        tags=m.tags,
                        metrics=m.metrics,
                        description=m.description,
                    )
                    print(f"demo: imported {v.ref} ({len(v.files)} files)", file=sys.stderr)
            if settings.executor == "docker":
                present = await engine.image_presence()
                missing = [n for n, ok in present.items() if not ok]
                if build:
                    missing = await build_images(engine, missing)
                if missing:
                    print(
                        f"demo: {len(missing)} processing image(s) are not built "
                        f"({', '.join(missing)}); build them with: "
                        "picsellia-tui --config " + str(cfg) + " processings build --all",
                        file=sys.stderr,
                    )

    anyio.run(seed)
    print(f"demo: workspace ready in {root} (config {cfg})", file=sys.stderr)
    return settings


async def build_images(engine: Any, names: list[str]) -> list[str]:
    """Build each image in turn, counting "i/n" over all of them; returns those that
    did not build."""
    failed = []
    for i, name in enumerate(names, 1):
        print(
            f"demo: building image {i}/{len(names)}: {name} (Docker caches it: once only)",
            file=sys.stderr,
            flush=True,
        )
        try:
            await engine.build_processing(name)
        except Exception as exc:
            print(f"demo: {name} did not build: {first_line(exc)}", file=sys.stderr)
            failed.append(name)
    return failed
