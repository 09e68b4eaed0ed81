"""The reliable channel: acks, retransmission with backoff, dedup, order, keepalive."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.uin.codec import (
    Ack,
    Body,
    ContactRemove,
    ErrorCode,
    Goodbye,
    Ping,
    UinProtocolError,
)
from adapters.uin.reliability import ReliabilityConfig, ReliableChannel


def cmd(n: int) -> ContactRemove:
    return ContactRemove(n)


def test_each_datagram_gets_the_next_sequence_number_and_the_cumulative_ack() -> None:
    """Reliable commands are numbered 1, 2, 3 and carry what we have received."""
    ch = ReliableChannel(0.0)
    ch.receive(1, 0, cmd(9), 0.0)
    for i in range(3):
        ch.send(cmd(i))
    out = ch.datagrams_to_send(0.0)
    assert [(s, a) for s, a, _ in out] == [(1, 1), (2, 1), (3, 1)]


def test_lost_datagram_is_retransmitted_with_doubling_timeout() -> None:
    """Without an ack, the same seq goes out again after 1, 2, 4 ... seconds."""
    ch = ReliableChannel(0.0, ReliabilityConfig(initial_rto=1.0, max_rto=8.0))
    ch.send(cmd(1))
    assert [s for s, _, _ in ch.datagrams_to_send(0.0)] == [1]
    times = []
    now = 0.0
    for _ in range(5):
        timer = ch.get_timer()
        assert timer is not None
        now = timer
        ch.handle_timer(now)
        assert [s for s, _, _ in ch.datagrams_to_send(now)] == [1]
        times.append(now)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert gaps == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_too_many_retransmissions_kill_the_channel() -> None:
    """After max_retransmits unanswered resends the channel is dead with TIMEOUT."""
    ch = ReliableChannel(0.0, ReliabilityConfig(max_retransmits=3, idle_timeout=1e9))
    ch.send(cmd(1))
    ch.datagrams_to_send(0.0)
    now = 0.0
    while ch.dead is None:
        timer = ch.get_timer()
        assert timer is not None
        now = timer
        ch.handle_timer(now)
        ch.datagrams_to_send(now)
    assert ch.dead is ErrorCode.TIMEOUT
    assert ch.stats.retransmitted == 3


def test_ack_stops_retransmission() -> None:
    """An acked datagram is never sent again."""
    ch = ReliableChannel(0.0)
    ch.send(cmd(1))
    ch.datagrams_to_send(0.0)
    ch.receive(0, 1, Ack(0), 0.1)
    assert ch.idle
    ch.handle_timer(5.0)
    assert ch.datagrams_to_send(5.0) == []


def test_duplicates_are_dropped_and_reacked() -> None:
    """A repeated seq is not delivered again, but is acked again."""
    ch = ReliableChannel(0.0)
    assert ch.receive(1, 0, cmd(1), 0.0) == [cmd(1)]
    ch.datagrams_to_send(0.0)
    assert ch.receive(1, 0, cmd(1), 0.1) == []
    assert ch.datagrams_to_send(0.1) == [(0, 1, Ack(0))]
    assert ch.stats.duplicates == 1


def test_out_of_order_datagrams_are_held_and_delivered_in_order_with_selective_ack() -> None:
    """3 and 2 before 1: nothing until 1 arrives, then 1, 2, 3; the ACK says what is held."""
    ch = ReliableChannel(0.0)
    assert ch.receive(3, 0, cmd(3), 0.0) == []
    assert ch.datagrams_to_send(0.0) == [(0, 0, Ack(0b10))]
    assert ch.receive(2, 0, cmd(2), 0.0) == []
    assert ch.receive(1, 0, cmd(1), 0.0) == [cmd(1), cmd(2), cmd(3)]


def test_selective_ack_releases_only_the_named_datagrams() -> None:
    """An ACK with cumulative 0 and bit 0 set acknowledges seq 2 only."""
    ch = ReliableChannel(0.0)
    for i in range(3):
        ch.send(cmd(i))
    ch.datagrams_to_send(0.0)
    ch.receive(0, 0, Ack(0b1), 0.1)
    ch.handle_timer(10.0)
    assert sorted(s for s, _, _ in ch.datagrams_to_send(10.0)) == [1, 3]


def test_window_limits_datagrams_in_flight() -> None:
    """No more than ``window`` unacked datagrams are out; the rest wait."""
    ch = ReliableChannel(0.0, ReliabilityConfig(window=4))
    for i in range(10):
        ch.send(cmd(i))
    assert len(ch.datagrams_to_send(0.0)) == 4
    ch.receive(0, 2, Ack(0), 0.1)
    assert [s for s, _, _ in ch.datagrams_to_send(0.1)] == [5, 6]


def test_far_future_sequence_numbers_are_a_protocol_error() -> None:
    """A seq beyond the receive window cannot come from a correct sender: protocol error
    (spec section 3: a MAC-valid datagram is never dropped silently)."""
    ch = ReliableChannel(0.0, ReliabilityConfig(receive_window=8))
    assert ch.receive(8, 0, cmd(1), 0.0) == []  # the edge of the window is buffered
    with pytest.raises(UinProtocolError):
        ch.receive(9, 0, cmd(1), 0.0)


def test_selective_ack_for_a_datagram_never_sent_is_a_protocol_error() -> None:
    """A selective-ack bit naming a number not yet sent is refused; sent ones are taken."""
    ch = ReliableChannel(0.0)
    for i in range(3):
        ch.send(cmd(i))
    assert len(ch.datagrams_to_send(0.0)) == 3
    ch.receive(0, 0, Ack(0b11), 0.1)  # seqs 2 and 3: sent
    with pytest.raises(UinProtocolError):
        ch.receive(0, 0, Ack(0b100), 0.2)  # seq 4: never sent


def test_ack_for_a_datagram_never_sent_is_a_protocol_error() -> None:
    """Acknowledging the future is the peer's protocol error."""
    ch = ReliableChannel(0.0)
    with pytest.raises(UinProtocolError):
        ch.receive(0, 5, Ack(0), 0.0)


def test_wrong_kind_of_sequence_number_is_a_protocol_error() -> None:
    """A reliable command with seq 0, or an ACK with a seq, is refused."""
    ch = ReliableChannel(0.0)
    with pytest.raises(UinProtocolError):
        ch.receive(0, 0, cmd(1), 0.0)
    with pytest.raises(UinProtocolError):
        ch.receive(4, 0, Goodbye(ErrorCode.TIMEOUT), 0.0)


def test_unsequenced_goodbye_is_delivered_at_once() -> None:
    """GOODBYE (seq 0) is handed up immediately."""
    ch = ReliableChannel(0.0)
    assert ch.receive(0, 0, Goodbye(ErrorCode.TIMEOUT), 0.0) == [Goodbye(ErrorCode.TIMEOUT)]


def test_keepalive_pings_when_idle_and_silence_kills() -> None:
    """With keepalive set, an idle channel sends PING; nothing heard for the timeout: dead."""
    ch = ReliableChannel(0.0, ReliabilityConfig(keepalive=30.0, idle_timeout=120.0))
    assert ch.get_timer() == 30.0
    ch.handle_timer(30.0)
    assert [b for _, _, b in ch.datagrams_to_send(30.0)] == [Ping()]
    ch.handle_timer(120.0)
    assert ch.dead is ErrorCode.TIMEOUT


def test_rtt_samples_shrink_the_retransmission_timeout() -> None:
    """Fast acks bring the RTO down from 1 s towards the 0.5 s floor (RFC 6298)."""
    ch = ReliableChannel(0.0)
    now = 0.0
    for i in range(1, 20):
        ch.send(cmd(i))
        ch.datagrams_to_send(now)
        now += 0.05
        ch.receive(0, i, Ack(0), now)
    ch.send(cmd(99))
    ch.datagrams_to_send(now)
    timer = ch.get_timer()
    assert timer is not None and timer - now == pytest.approx(0.5)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.floats(0.0, 0.5), st.floats(0.0, 0.3))
def test_any_loss_pattern_delivers_everything_exactly_once_in_order(
    seed: int, loss: float, duplicate: float
) -> None:
    """Two channels over a random lossy, duplicating, reordering link agree exactly."""
    rng = random.Random(seed)
    config = ReliabilityConfig(max_retransmits=60, idle_timeout=1e9)
    a, b = ReliableChannel(0.0, config), ReliableChannel(0.0, config)
    wanted = [cmd(i) for i in range(40)]
    for body in wanted:
        a.send(body)
    in_flight: list[tuple[float, str, int, int, Body]] = []
    got: list[Body] = []
    now = 0.0
    while now < 2000 and (len(got) < len(wanted) or not a.idle):
        for name, ch in (("a", a), ("b", b)):
            for seq, ack, body in ch.datagrams_to_send(now):
                if rng.random() < loss:
                    continue
                for _ in range(2 if rng.random() < duplicate else 1):
                    in_flight.append((now + rng.uniform(0.01, 0.4), name, seq, ack, body))
        in_flight.sort(key=lambda x: x[0])
        while in_flight and in_flight[0][0] <= now:
            _, src, seq, ack, body = in_flight.pop(0)
            if src == "a":
                got.extend(b.receive(seq, ack, body, now))
            else:
                a.receive(seq, ack, body, now)
        for ch in (a, b):
            timer = ch.get_timer()
            if timer is not None and timer <= now:
                ch.handle_timer(now)
        now += 0.05
    assert got == wanted
    assert a.dead is None
