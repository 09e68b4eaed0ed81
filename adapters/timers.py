"""One timer per connection, re-aimed cheaply.

A connection's session names its next deadline after every packet (idle timeout,
keepalive, login limit); most packets push it a little later. Twisted keeps timers in a
heap: moving one *sooner* (``DelayedCall.reset``) searches the whole heap, which with
10,000 connections was a fifth of the gateway's CPU (docs/BENCHMARKS.md, full run).
So a timer already due at or before the new deadline is kept: it fires early, the
session finds nothing due, and the timer is aimed again. Only a deadline that moved
sooner replaces the timer (a cancel is cheap in Twisted: marked, cleaned up lazily).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast


class Timer(Protocol):
    def active(self) -> bool: ...

    def cancel(self) -> None: ...

    def getTime(self) -> float: ...


class TimerClock(Protocol):
    def seconds(self) -> float: ...

    def callLater(
        self, delay: float, callable: Callable[..., object], *args: object, **kw: object
    ) -> Any: ...


def aim(
    timer: Timer | None, deadline: float | None, clock: TimerClock, fire: Callable[[], None]
) -> Timer | None:
    """The timer to keep for ``deadline`` (None: no timer)."""
    if deadline is None:
        if timer is not None and timer.active():
            timer.cancel()
        return None
    if timer is not None and timer.active():
        if timer.getTime() <= deadline:
            return timer
        timer.cancel()
    return cast(Timer, clock.callLater(max(0.0, deadline - clock.seconds()), fire))
