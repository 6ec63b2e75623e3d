"""Can this processing run on that version? One answer, with the reason why not."""

from __future__ import annotations

from fnmatch import fnmatch

from picsellia_tui.storage.domain import Constraints, TargetType


def incompatibility(
    target_type: str, constraints: Constraints, framework: str, file_paths: list[str]
) -> str | None:
    """None when compatible, else a one-line reason."""
    if target_type != TargetType.MODEL_VERSION:
        return f"runs on a {target_type.replace('_', ' ')}, not on a model version"
    if constraints.frameworks and framework.lower() not in constraints.frameworks:
        return f"needs framework {' or '.join(constraints.frameworks)}, version is {framework}"
    for pattern in constraints.required_files:
        if not any(
            fnmatch(p, pattern) or fnmatch(p.rsplit("/", 1)[-1], pattern) for p in file_paths
        ):
            return f"needs a file matching {pattern!r}"
    return None
