"""A bound on what one connection may have waiting for its client.

Twisted's TCP transport buffers every ``write`` in memory until the socket takes it.
A client that stops reading (or reads slower than others write to it) would make that
buffer grow without limit: a held-out test grew the gateway from 103 to 410 MB in 6 s
with one such reader. This guard registers itself as the transport's streaming
producer, so the transport tells it when its own buffer passes its high-water mark
(``pauseProducing``) and when it drained (``resumeProducing``). While paused, the guard
counts what is written on top; past ``limit`` bytes, or when the client has not drained
for ``stall_seconds``, the connection is aborted (``abortConnection`` drops the buffer at
once, so the memory returns) and ``on_overflow`` is told why, once.

Only the glue uses it: the sans-IO sessions never see sockets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

DEFAULT_LIMIT = 1 << 20
"""Bytes a paused connection may still be handed (on top of Twisted's 64 KiB buffer)."""
DEFAULT_STALL_SECONDS = 60.0
"""How long a client may keep its socket full without draining it."""


@dataclass(frozen=True, slots=True)
class OutputLimits:
    limit: int = DEFAULT_LIMIT
    stall_seconds: float = DEFAULT_STALL_SECONDS


DEFAULT_OUTPUT = OutputLimits()


class _Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    def abortConnection(self) -> None: ...

    def registerProducer(self, producer: Any, streaming: bool) -> None: ...


class _DelayedCall(Protocol):
    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class _Clock(Protocol):
    def callLater(self, delay: float, f: Callable[[], object]) -> _DelayedCall: ...


class OutputBound:
    """Write through this instead of the transport; see the module docstring."""

    def __init__(
        self,
        transport: Any,
        clock: Any,
        on_overflow: Callable[[str], None],
        limits: OutputLimits = DEFAULT_OUTPUT,
    ) -> None:
        self._transport: _Transport = transport
        self._clock: _Clock = clock
        self._on_overflow = on_overflow
        self._limit = limits.limit
        self._stall_seconds = limits.stall_seconds
        self._paused = False
        self._over = 0  # bytes written while paused
        self._stall: _DelayedCall | None = None
        self.aborted = False
        self._resumed: list[Callable[[], None]] = []
        self._stopped = False
        self._transport.registerProducer(self, True)

    @property
    def paused(self) -> bool:
        return self._paused

    def when_resumed(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the client has drained what waits (at once when
        nothing does), or when the connection is aborted or gone: the core paces a
        backlog by it (adapters.contract.FlowControlled)."""
        if not self._paused or self.aborted or self._stopped:
            callback()
        else:
            self._resumed.append(callback)

    def _wake(self) -> None:
        waiting, self._resumed = self._resumed, []
        for callback in waiting:
            callback()

    def write(self, data: bytes) -> bool:
        """Hand ``data`` to the transport; False (and nothing written) once aborted."""
        if self.aborted:
            return False
        if self._paused:
            self._over += len(data)
            if self._over > self._limit:
                self._abort(f"the client is not reading ({self._over} bytes waiting)")
                return False
        self._transport.write(data)
        return True

    # IPushProducer, called by the transport
    def pauseProducing(self) -> None:
        if self._paused or self.aborted:
            return
        self._paused = True
        self._over = 0
        self._stall = self._clock.callLater(self._stall_seconds, self._stalled)

    def resumeProducing(self) -> None:
        self._paused = False
        self._over = 0
        self._cancel_stall()
        self._wake()

    def stopProducing(self) -> None:
        self._cancel_stall()
        self._stopped = True  # the connection is gone
        self._wake()

    def _stalled(self) -> None:
        self._stall = None
        if self._paused and not self.aborted:
            self._abort(f"the client has not read for {self._stall_seconds:g} s")

    def _abort(self, why: str) -> None:
        self.aborted = True
        self._cancel_stall()
        self._on_overflow(why)
        self._transport.abortConnection()
        self._wake()

    def _cancel_stall(self) -> None:
        if self._stall is not None and self._stall.active():
            self._stall.cancel()
        self._stall = None
