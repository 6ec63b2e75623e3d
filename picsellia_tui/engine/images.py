"""Building and finding processing images on a Docker host.

`build_image` sends the build context over the Docker API (so it works the same on a
remote ssh:// or tcp:// host, no shared filesystem), streams the daemon's JSON
progress and turns it into readable lines for `on_line`. Blocking: call it from a
worker thread (`anyio.to_thread.run_sync`) in async code.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors

from picsellia_tui.engine.executors.base import ExecutorError, ImageMissing
from picsellia_tui.engine.executors.docker_private import abort_response
from picsellia_tui.engine.hosts import HostConfig, connect, describe_error, one_line

__all__ = [
    "BUILD_TIMEOUT",
    "BuildCancel",
    "BuildCancelled",
    "build_image",
    "image_present",
    "immutable_ref",
    "missing_image_message",
]

BUILD_TIMEOUT = 3600  # seconds without output from the daemon before a build gives up
_STEP = re.compile(r"^Step \d+/\d+ : ")


@contextlib.contextmanager
def _client(target: HostConfig | docker.DockerClient) -> Iterator[docker.DockerClient]:
    if isinstance(target, docker.DockerClient):
        yield target
        return
    client = connect(target)
    try:
        yield client
    finally:
        client.close()


class BuildCancelled(ExecutorError):
    """The build was cancelled (its connection closed: the daemon stopped it)."""


class BuildCancel:
    """Stops a build from another thread.

    The daemon stops a build whose client went away (the build's request is
    cancelled, its running step killed), so cancelling closes the build's
    connection; a build whose request has not been answered yet is closed as soon
    as the answer starts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._response: Any = None
        self.cancelled = False

    def attach(self, response: Any) -> None:
        with self._lock:
            self._response = response
            cancelled = self.cancelled
        if cancelled:
            abort_response(response)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            response = self._response
        if response is not None:
            abort_response(response)


def _host_url(target: HostConfig | docker.DockerClient) -> str:
    if isinstance(target, HostConfig):
        return target.url
    return str(getattr(target.api, "base_url", "docker"))


def immutable_ref(attrs: dict[str, Any], wanted: str | None = None) -> str:
    """The reference a run should use: a repo digest if the image has one, else its id.

    With several repo digests, the one of the repository named in `wanted` wins.
    """
    digests = [str(d) for d in attrs.get("RepoDigests") or []]
    if digests:
        if wanted:
            repo = wanted.split("@", 1)[0]
            last = repo.rsplit("/", 1)[-1]
            if ":" in last:
                repo = repo[: repo.rfind(":")]
            for d in digests:
                if d.split("@", 1)[0] == repo or d.split("@", 1)[0].endswith("/" + repo):
                    return d
        return digests[0]
    return str(attrs["Id"])


def missing_image_message(image: str, host_name: str, processing: str | None = None) -> str:
    if image.rpartition("@")[2].startswith("sha256:"):
        # A digest (a re-run pinned to an earlier run's image): a build makes a new one.
        return (
            f"image {image} is no longer on host {host_name} (removed or pruned since it "
            "ran); re-run without --same-image to run the processing's current image"
        )
    name = processing or "<processing>"
    return (
        f"image {image} is not on host {host_name}; build it with: "
        f"picsellia-tui processings build {name} --host {host_name}"
    )


def image_present(target: HostConfig | docker.DockerClient, ref: str) -> bool:
    """True when `ref` (tag, id or digest) names an image on the host. Blocking."""
    with _client(target) as client:
        try:
            api: Any = client.api
            api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.NotFound:
            return False
        except Exception as exc:
            raise describe_error(exc, _host_url(target), f"inspect image {ref}") from None
        return True


def _format_status(event: dict[str, Any]) -> str | None:
    status = str(event.get("status") or "").strip()
    if not status:
        return None
    if event.get("progressDetail") and event.get("progress"):
        return None  # download / extract progress bars: too chatty for a log
    ident = str(event.get("id") or "").strip()
    return f"{ident}: {status}" if ident else status


def build_image(
    target: HostConfig | docker.DockerClient,
    context_dir: Path,
    dockerfile: str | Path,
    tag: str,
    on_line: Callable[[str], None],
    *,
    buildargs: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    pull: bool = False,
    nocache: bool = False,
    timeout: int = BUILD_TIMEOUT,
    cancel: BuildCancel | None = None,
) -> str:
    """Build `tag` from `context_dir` on the host; return the image id ("sha256:...").

    `dockerfile` is relative to `context_dir` (or absolute, even outside it).
    `on_line` gets each output line, without line ending. Raises ExecutorError with
    the failing step and the daemon's message ("build of x:1 failed at Step 3/5 :
    RUN pip install nope: The command ... returned a non-zero code: 1"), or
    HostUnreachable; BuildCancelled once `cancel` was used.
    """
    context_dir = Path(context_dir)
    if not context_dir.is_dir():
        raise ExecutorError(f"build context {context_dir} is not a folder")
    df = Path(dockerfile)
    df_path = df if df.is_absolute() else context_dir / df
    if not df_path.is_file():
        raise ExecutorError(f"Dockerfile {df_path} not found")
    try:
        df_arg = str(df_path.resolve().relative_to(context_dir.resolve()))
    except ValueError:
        df_arg = str(df_path.resolve())  # outside the context: docker-py ships it along
    url = _host_url(target)
    step = ""
    image_id: str | None = None
    partial = ""
    with _client(target) as client:
        api_hooks: Any = client.api.hooks["response"]

        def hook(response: Any, *args: Any, **kwargs: Any) -> None:
            if cancel is not None:
                cancel.attach(response)

        api_hooks.append(hook)
        try:
            if cancel is not None and cancel.cancelled:
                raise BuildCancelled(f"build of {tag} cancelled")
            stream = client.api.build(
                path=str(context_dir),
                dockerfile=df_arg,
                tag=tag,
                rm=True,
                forcerm=True,
                pull=pull,
                nocache=nocache,
                buildargs=buildargs or None,
                labels=labels or None,
                decode=True,
                timeout=timeout,
            )
            for event in stream:
                if cancel is not None and cancel.cancelled:
                    break
                if not isinstance(event, dict):
                    continue
                if "error" in event or "errorDetail" in event:
                    detail = event.get("errorDetail") or {}
                    message = str(event.get("error") or detail.get("message") or "unknown error")
                    if partial:
                        on_line(partial)
                        partial = ""
                    at = f" at {step}" if step else ""
                    raise ExecutorError(f"build of {tag} failed{at}: {one_line(message)}")
                text = event.get("stream")
                if isinstance(text, str):
                    pieces = (partial + text).split("\n")
                    partial = pieces.pop()
                    for piece in pieces:
                        line = piece.rstrip("\r")
                        if _STEP.match(line):
                            step = one_line(line, 160)
                        on_line(line)
                aux = event.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = str(aux["ID"])
                status = _format_status(event)
                if status:
                    on_line(status)
            if partial:
                on_line(partial)
            if cancel is not None and cancel.cancelled:
                raise BuildCancelled(f"build of {tag} cancelled")
            if image_id is None:
                api: Any = client.api
                image_id = str(api.inspect_image(tag)["Id"])
        except ExecutorError:
            raise
        except docker.errors.ImageNotFound:
            raise ImageMissing(f"build of {tag} produced no image on {url}") from None
        except Exception as exc:
            if cancel is not None and cancel.cancelled:  # its connection was closed
                raise BuildCancelled(f"build of {tag} cancelled") from None
            err = describe_error(exc, url, f"build of {tag}")
            raise err from None
        finally:
            if hook in api_hooks:
                api_hooks.remove(hook)
    return image_id
