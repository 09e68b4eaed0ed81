"""Rate classes, advertised in 01/07 and enforced on every SNAC a client sends.

Each class keeps a moving average of the gap between the client's SNACs in that
class (milliseconds): ``level = (level * (window - 1) + gap) / window``, capped at
``max_level``. Below ``alert`` the client is warned (01/0A code 2); below ``limit``
its SNACs are dropped (code 3) until the level climbs back over ``clear`` (code 4);
below ``disconnect`` the connection is closed. Numbers follow what AOL's servers
advertised (Shutko's SNAC(01,07) and (01,0A) dumps). Pure: time is an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from adapters.oscar.snac import RateClass, RateGroup


@dataclass(frozen=True, slots=True)
class RateLimits:
    class_id: int
    window: int
    clear: int
    alert: int
    limit: int
    disconnect: int
    max_level: int
    pairs: tuple[tuple[int, int], ...] = ()


# Class 2 holds what one user can aim at another (messages, info lookups, auth
# requests); class 1 everything else.
_CLASS2_PAIRS = (
    (0x0002, 0x0005),
    (0x0002, 0x000B),
    (0x0002, 0x0015),
    (0x0004, 0x0006),
    (0x0004, 0x0008),
    (0x0013, 0x0014),
    (0x0013, 0x0018),
    (0x0013, 0x001A),
    (0x0015, 0x0002),
)

_CLASS1_PAIRS = (
    *((0x0001, s) for s in (0x02, 0x04, 0x06, 0x08, 0x0E, 0x11, 0x14, 0x16, 0x17, 0x1E)),
    *((0x0002, s) for s in (0x02, 0x04)),
    *((0x0003, s) for s in (0x02, 0x04, 0x05)),
    *((0x0004, s) for s in (0x02, 0x04, 0x0B, 0x10, 0x14)),
    *((0x0009, s) for s in (0x02, 0x04, 0x05, 0x06, 0x07, 0x08)),
    *((0x0013, s) for s in (0x02, 0x04, 0x05, 0x07, 0x08, 0x09, 0x0A, 0x11, 0x12)),
)

DEFAULT_LIMITS: tuple[RateLimits, ...] = (
    RateLimits(1, 80, 2500, 2000, 1500, 800, 6000, _CLASS1_PAIRS),
    RateLimits(2, 20, 5100, 5000, 4000, 3000, 6000, _CLASS2_PAIRS),
)


class RateVerdict(Enum):
    OK = "ok"
    ALERT = "alert"  # process it, warn (01/0A code 2)
    LIMITED = "limited"  # drop it, tell the client it is limited (code 3)
    DROPPED = "dropped"  # still limited: drop silently
    CLEARED = "cleared"  # no longer limited: process, tell (code 4)
    DISCONNECT = "disconnect"


@dataclass(slots=True)
class _ClassState:
    limits: RateLimits
    level: float
    last: float
    limited: bool = False
    alerted: bool = False


class RateMeter:
    def __init__(self, now: float, limits: tuple[RateLimits, ...] = DEFAULT_LIMITS) -> None:
        self._states = {lim.class_id: _ClassState(lim, float(lim.max_level), now) for lim in limits}
        self._class_of: dict[tuple[int, int], int] = {}
        for lim in limits:
            for pair in lim.pairs:
                self._class_of[pair] = lim.class_id
        self._default = limits[0].class_id

    def class_of(self, family: int, subtype: int) -> int:
        return self._class_of.get((family, subtype), self._default)

    def record(self, family: int, subtype: int, now: float) -> tuple[RateVerdict, RateClass]:
        """Count one SNAC from the client and say what to do with it."""
        state = self._states[self.class_of(family, subtype)]
        lim = state.limits
        gap_ms = max(0.0, (now - state.last) * 1000.0)
        state.level = min(
            float(lim.max_level), (state.level * (lim.window - 1) + gap_ms) / lim.window
        )
        state.last = now
        if state.level < lim.disconnect:
            verdict = RateVerdict.DISCONNECT
        elif state.limited:
            if state.level >= lim.clear:
                state.limited = False
                state.alerted = False
                verdict = RateVerdict.CLEARED
            else:
                verdict = RateVerdict.DROPPED
        elif state.level < lim.limit:
            state.limited = True
            verdict = RateVerdict.LIMITED
        elif state.level < lim.alert:
            verdict = RateVerdict.OK if state.alerted else RateVerdict.ALERT
            state.alerted = True
        else:
            state.alerted = False
            verdict = RateVerdict.OK
        return verdict, self._snapshot(state, now)

    def advertised(self, now: float) -> tuple[tuple[RateClass, ...], tuple[RateGroup, ...]]:
        """The body of 01/07."""
        classes = tuple(self._snapshot(s, now) for s in self._states.values())
        groups = tuple(RateGroup(s.limits.class_id, s.limits.pairs) for s in self._states.values())
        return classes, groups

    @staticmethod
    def _snapshot(state: _ClassState, now: float) -> RateClass:
        lim = state.limits
        return RateClass(
            class_id=lim.class_id,
            window=lim.window,
            clear=lim.clear,
            alert=lim.alert,
            limit=lim.limit,
            disconnect=lim.disconnect,
            current=int(state.level),
            max_level=lim.max_level,
            last_time=0,
            state=1 if state.limited else 0,
        )
