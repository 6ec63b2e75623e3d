"""Engine events and the broadcaster a UI subscribes to.

Subscribers get an anyio memory object stream. A slow subscriber never slows the
engine: when its buffer is full it gets a single `Resync` and must re-read state.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream


@dataclass(frozen=True, slots=True)
class JobCreated:
    job_id: int


@dataclass(frozen=True, slots=True)
class RunChanged:
    run_id: int
    job_id: int
    status: str


@dataclass(frozen=True, slots=True)
class LogAppended:
    run_id: int
    job_id: int
    lines: int  # total lines stored so far


@dataclass(frozen=True, slots=True)
class VersionCreated:
    version_id: int
    model_name: str
    name: str


@dataclass(frozen=True, slots=True)
class ProcessingsChanged:
    """A processing was created, updated or removed (by this engine)."""

    name: str


@dataclass(frozen=True, slots=True)
class BuildEnded:
    """An image build ended: status succeeded, failed or cancelled."""

    build_id: int
    processing: str
    status: str


@dataclass(frozen=True, slots=True)
class ExternalChange:
    """Another process committed to the database (another engine, the CLI)."""


@dataclass(frozen=True, slots=True)
class Resync:
    """Events were dropped for this subscriber: reload what you show."""


Event = (
    JobCreated
    | RunChanged
    | LogAppended
    | VersionCreated
    | ProcessingsChanged
    | BuildEnded
    | ExternalChange
    | Resync
)


class Broadcaster:
    def __init__(self, buffer: int = 1024) -> None:
        self._buffer = buffer
        self._subs: list[MemoryObjectSendStream[Event]] = []
        self._overflowed: set[int] = set()

    def subscribe(self) -> MemoryObjectReceiveStream[Event]:
        send, recv = anyio.create_memory_object_stream[Event](self._buffer)
        self._subs.append(send)
        return recv

    def publish(self, event: Event) -> None:
        for send in list(self._subs):
            try:
                if id(send) in self._overflowed:
                    send.send_nowait(Resync())
                    self._overflowed.discard(id(send))
                send.send_nowait(event)
            except anyio.WouldBlock:
                self._overflowed.add(id(send))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._subs.remove(send)

    def close(self) -> None:
        for send in self._subs:
            send.close()
        self._subs.clear()
