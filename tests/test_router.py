"""Pure routing decisions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway import router
from gateway.aliases import display_with_network, plan_alias
from gateway.core import split_body
from schema.events import (
    MAX_HOPS,
    FailureReason,
    Message,
    Presence,
    PresenceState,
    Typing,
)
from schema.records import SessionInfo


def _session(
    sid: str, node: str, active: float, state: PresenceState = PresenceState.ONLINE
) -> router.LiveSession:
    info = SessionInfo(sid, "uin:1", node, "uin", since=1.0, presence=state)
    return router.LiveSession(info, active)


def test_hop_budget_is_enforced() -> None:
    """An event at MAX_HOPS is refused with hops_exhausted; below it passes."""
    ok = Message(sender="uin:1", recipient="uin:2", body="x", hops=MAX_HOPS - 1)
    assert router.refusal(ok) is None
    assert router.refusal(ok.model_copy(update={"hops": MAX_HOPS})) is FailureReason.HOPS_EXHAUSTED


def test_failure_goes_back_to_the_sender_with_the_trace() -> None:
    """A failure is addressed to the sender, from the recipient, carrying id and trace."""
    message = Message(sender="uin:1", recipient="uin:2", body="x")
    failure = router.failure_for(message, FailureReason.BLOCKED)
    assert (failure.sender, failure.recipient) == ("uin:2", "uin:1")
    assert failure.message_id == message.id and failure.trace_id == message.trace_id


def test_policies_per_kind() -> None:
    """Messages queue and dedupe; typing and presence never queue."""
    assert router.policy(Message(sender="uin:1", recipient="uin:2", body="")).queue_offline
    assert not router.policy(Typing(sender="uin:1", recipient="uin:2", active=True)).queue_offline
    assert not router.policy(
        Presence(sender="uin:1", recipient="uin:2", state=PresenceState.AWAY)
    ).queue_offline


def test_most_recently_active_session_and_address_win() -> None:
    """The newest activity wins among sessions and among a person's addresses."""
    a, b = _session("a", "n1", 5.0), _session("b", "n2", 9.0)
    assert router.choose_session([a, b]) is b
    assert router.choose_session([]) is None
    assert router.choose_address("uin:1", {"uin:1": [a], "msn:x@y.zz": [b]}) == "msn:x@y.zz"
    assert router.choose_address("uin:1", {"msn:x@y.zz": []}) == "uin:1"


def test_live_sessions_only_on_alive_nodes() -> None:
    """Sessions on dead nodes are not delivery targets."""
    a, b = _session("a", "n1", 5.0), _session("b", "dead", 9.0)
    assert router.live_sessions([a, b], {"n1": True, "dead": False}) == [a]


def test_merged_presence_prefers_available_and_hides_invisible() -> None:
    """The most available state wins; invisible shows as offline."""
    assert (
        router.merged_presence([(PresenceState.AWAY, "out"), (PresenceState.ONLINE, "")])[0]
        is PresenceState.ONLINE
    )
    assert router.merged_presence([(PresenceState.INVISIBLE, "x")]) == (PresenceState.OFFLINE, "")
    assert router.merged_presence([]) == (PresenceState.OFFLINE, "")


@given(st.text(min_size=0, max_size=300), st.integers(1, 50))
def test_split_body_keeps_order_and_every_character(body: str, limit: int) -> None:
    """Splitting never truncates nor reorders, and respects the limit."""
    parts = split_body(Message(sender="uin:1", recipient="uin:2", body=body), limit)
    assert "".join(p.body for p in parts) == body
    assert all(len(p.body) <= limit for p in parts)
    assert len({p.id for p in parts}) == len(parts)


def test_alias_plans_per_network() -> None:
    """Numeric namespaces get numbers; MSN gets a readable handle naming the network."""
    assert plan_alias("msn:bob@x.com", "uin", 2_000_000_000, "gw.invalid").candidates == ()
    plan = plan_alias("oscar:Cool.Kid", "msn", 0, "gw.invalid")
    assert plan.candidates == ("cool.kid.oscar@gw.invalid",)
    assert display_with_network("Bob", "msn:bob@x.com") == "Bob [MSN]"


def test_the_sender_is_never_chosen_among_a_persons_addresses() -> None:
    """A person writing to their other address never gets it back on their own one."""
    busy, quiet = _session("a", "n1", 9.0), _session("b", "n1", 1.0)
    online = {"uin:1": [busy], "msn:x@y.zz": [quiet]}
    assert router.choose_address("msn:x@y.zz", online) == "uin:1"
    assert router.choose_address("msn:x@y.zz", online, exclude="uin:1") == "msn:x@y.zz"
    assert router.choose_address("msn:x@y.zz", {"uin:1": [busy]}, exclude="uin:1") == "msn:x@y.zz"


def test_self_addressed_is_refused() -> None:
    """A resolved target that is the sender is refused as self_addressed."""
    assert router.self_addressed("uin:1", "uin:1") is FailureReason.SELF_ADDRESSED
    assert router.self_addressed("uin:1", "uin:2") is None
