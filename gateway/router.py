"""Routing decisions, pure: no Redis, no reactor. The core (gateway.core) gathers the
facts, asks these functions, and carries out what they decide.

Theory of operation. An event a local user produced goes through:
1. ``refusal``: is the envelope itself deliverable (hop budget)?
2. resolution (core, from the store): the recipient address is a native account, or an
   alias that stands for a user of another network, or nobody (refused:
   unknown_recipient). ``self_addressed``: a target that is the sender is refused.
   The gateway bot answers events to its own addresses itself (gateway.bot). A blocked
   sender is refused (blocked).
3. ``choose_address``: a linked person is reached on whichever address is online,
   most recently active first, never on the sender's own address; nobody online ->
   the address that was written to.
4. ``policy``: per kind, whether the event waits offline when nobody is online, whether
   duplicates are dropped by id, whether a refusal is reported to the sender.
5. ``choose_session``: of the recipient's sessions on live nodes, the most recently
   active one gets it; none alive -> offline as in 4.
Refusals come back to the sender as a ``DeliveryFailure`` (``failure_for``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from schema.events import (
    MAX_HOPS,
    Authorization,
    CanonicalEvent,
    ContactRequest,
    DeliveryFailure,
    DeliveryReceipt,
    FailureReason,
    Message,
    Presence,
    PresenceState,
    Typing,
)
from schema.records import SessionInfo


@dataclass(frozen=True, slots=True)
class KindPolicy:
    queue_offline: bool
    dedupe: bool
    report_failure: bool


_POLICIES: dict[type[object], KindPolicy] = {
    Message: KindPolicy(queue_offline=True, dedupe=True, report_failure=True),
    ContactRequest: KindPolicy(queue_offline=True, dedupe=True, report_failure=True),
    Authorization: KindPolicy(queue_offline=True, dedupe=True, report_failure=False),
    DeliveryFailure: KindPolicy(queue_offline=True, dedupe=True, report_failure=False),
    DeliveryReceipt: KindPolicy(queue_offline=False, dedupe=True, report_failure=False),
    Presence: KindPolicy(queue_offline=False, dedupe=False, report_failure=False),
    Typing: KindPolicy(queue_offline=False, dedupe=False, report_failure=False),
}


def policy(event: CanonicalEvent) -> KindPolicy:
    return _POLICIES[type(event)]


def refusal(event: CanonicalEvent) -> FailureReason | None:
    """A reason the envelope cannot be delivered whatever the state, or None."""
    if event.hops >= MAX_HOPS:
        return FailureReason.HOPS_EXHAUSTED
    return None


def failure_for(event: CanonicalEvent, reason: FailureReason, detail: str = "") -> DeliveryFailure:
    """The failure that goes back to ``event``'s sender, from the unreachable recipient."""
    return DeliveryFailure(
        sender=event.recipient,
        recipient=event.sender,
        message_id=event.id,
        reason=reason,
        detail=detail,
        trace_id=event.trace_id,
        hops=0,
    )


@dataclass(frozen=True, slots=True)
class LiveSession:
    info: SessionInfo
    active: float


def live_sessions(sessions: Iterable[LiveSession], alive: Mapping[str, bool]) -> list[LiveSession]:
    return [s for s in sessions if alive.get(s.info.node_id, False)]


def choose_session(sessions: Sequence[LiveSession]) -> LiveSession | None:
    """The most recently active session (ties: the newest login)."""
    if not sessions:
        return None
    return max(sessions, key=lambda s: (s.active, s.info.since, s.info.session_id))


def self_addressed(sender: str, target: str) -> FailureReason | None:
    """A message never echoes back to its sender: an event whose resolved target is the
    sender itself (written to their own id, or to their own alias elsewhere) is refused."""
    return FailureReason.SELF_ADDRESSED if sender == target else None


def choose_address(
    written_to: str, online: Mapping[str, Sequence[LiveSession]], exclude: str = ""
) -> str:
    """For a linked person: the address with the most recently active live session;
    the address written to when none is online. ``exclude`` (the sender, when the
    person writes to another of their own addresses) is never chosen."""
    best: tuple[float, str] | None = None
    for address, sessions in online.items():
        if address == exclude:
            continue
        chosen = choose_session(sessions)
        if chosen is None:
            continue
        key = (chosen.active, address)
        if best is None or key > best:
            best = key
    return written_to if best is None else best[1]


_RANK = {
    PresenceState.ONLINE: 5,
    PresenceState.BUSY: 4,
    PresenceState.AWAY: 3,
    PresenceState.IDLE: 2,
    PresenceState.INVISIBLE: 1,
    PresenceState.OFFLINE: 0,
}


def merged_presence(states: Iterable[tuple[PresenceState, str]]) -> tuple[PresenceState, str]:
    """The presence a person shows over all their sessions (the most available wins);
    invisible shows as offline to others."""
    best: tuple[PresenceState, str] = (PresenceState.OFFLINE, "")
    for state, text in states:
        if _RANK[state] > _RANK[best[0]]:
            best = (state, text)
    if best[0] is PresenceState.INVISIBLE:
        return (PresenceState.OFFLINE, "")
    return best
