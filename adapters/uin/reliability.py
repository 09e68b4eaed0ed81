"""Reliable, ordered, exactly-once delivery of UIN commands over lossy datagrams.

Theory of operation
-------------------
One :class:`ReliableChannel` per logged-in session on each side (client and server
use the same class). It knows nothing about sockets, keys or clocks: the owner
feeds it received datagrams (``receive(seq, ack, body, now)``), asks it what to
transmit (``datagrams_to_send(now)`` -> ``(seq, ack, body)`` triples that the owner
encodes and MACs), and drives its timers (``get_timer()`` / ``handle_timer(now)``).

Sending. Every reliable command gets the next sequence number (1, 2, 3...; one
number space per direction). At most ``window`` of them are in flight; the rest
wait in order. Each in-flight datagram has its own retransmission deadline; the
timeout (RTO) follows RFC 6298 (SRTT/RTTVAR, Karn's rule: no samples from
retransmitted datagrams) and doubles on every retransmission up to ``max_rto``.
A datagram retransmitted ``max_retransmits`` times without an ack kills the channel.

Acknowledging. Every datagram carries in its header the cumulative ack: the highest
sequence number up to which everything has arrived. An explicit ACK (unsequenced)
adds a 32-bit selective bitmap for what arrived beyond that (bit i = seq ack+2+i).
An ack, cumulative or selective, for a number never sent is the peer's protocol error.
The receiver acks every sequenced datagram it gets, new or duplicate, so a lost ack
is repaired by the next retransmission.

Receiving. Sequence numbers at or below the cumulative ack are duplicates: dropped
(and re-acked). Up to ``receive_window`` numbers beyond it are buffered; anything
further is a protocol error: a sender keeps at most ``window`` (32) unacked and the
selective bitmap covers 32 more, so a correct one is never more than 64 ahead.
Commands leave the channel strictly in sequence order, each exactly once.
Unsequenced commands (seq 0: ACK, GOODBYE) are handed up at once.

Liveness. With ``keepalive`` set (the client), a PING is queued when nothing has been
sent for that long; its ack is the answer. Nothing received for ``idle_timeout`` kills
the channel. A dead channel reports ``dead`` (an ErrorCode) and sends nothing more.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from adapters.uin.codec import (
    MAX_U32,
    UNSEQUENCED,
    Ack,
    Body,
    ErrorCode,
    Ping,
    UinProtocolError,
)


@dataclass(frozen=True, slots=True)
class ReliabilityConfig:
    initial_rto: float = 1.0
    min_rto: float = 0.5
    max_rto: float = 8.0
    max_retransmits: int = 10
    window: int = 32
    receive_window: int = 64
    keepalive: float | None = None
    idle_timeout: float = 120.0


@dataclass(slots=True)
class _InFlight:
    seq: int
    body: Body
    sent_at: float = 0.0
    deadline: float = 0.0
    rto: float = 1.0
    retransmits: int = 0
    due: bool = True  # to be (re)transmitted by the next datagrams_to_send


@dataclass(slots=True)
class ChannelStats:
    sent: int = 0
    retransmitted: int = 0
    received: int = 0
    duplicates: int = 0
    delivered: int = 0


@dataclass(slots=True)
class ReliableChannel:
    now: float
    config: ReliabilityConfig = field(default_factory=ReliabilityConfig)
    dead: ErrorCode | None = None
    stats: ChannelStats = field(default_factory=ChannelStats)
    _next_seq: int = 1
    _in_flight: dict[int, _InFlight] = field(default_factory=dict)
    _waiting: deque[Body] = field(default_factory=deque)
    _received_up_to: int = 0
    _buffer: dict[int, Body] = field(default_factory=dict)
    _held: set[int] = field(default_factory=set)
    _ack_due: bool = False
    _last_received: float = 0.0
    _last_sent: float = 0.0
    _srtt: float | None = None
    _rttvar: float = 0.0
    _rto: float = 1.0

    def __post_init__(self) -> None:
        self._last_received = self._last_sent = self.now
        self._rto = self.config.initial_rto

    # ---- sending ------------------------------------------------------------------

    def send(self, body: Body) -> int:
        """Queue a reliable command; the sequence number it will carry (0: the channel
        is dead and nothing was queued)."""
        if body.COMMAND in UNSEQUENCED:
            raise ValueError(f"{body.COMMAND.name} is not a reliable command")
        if self.dead is not None:
            return 0
        self._waiting.append(body)
        return self._next_seq + len(self._waiting) - 1

    def acknowledged(self, seq: int) -> bool:
        """The peer has acknowledged the datagram numbered ``seq``."""
        return 0 < seq < self._next_seq and seq not in self._in_flight

    @property
    def unacknowledged(self) -> int:
        """Commands queued or in flight that the peer has not acknowledged yet."""
        return len(self._in_flight) + len(self._waiting)

    @property
    def idle(self) -> bool:
        """Everything sent has been acknowledged."""
        return not self._in_flight and not self._waiting

    @property
    def received_up_to(self) -> int:
        """The cumulative ack we advertise: everything up to it arrived and none of it
        is held (:meth:`hold`)."""
        if self._held:
            return min(self._received_up_to, min(self._held) - 1)
        return self._received_up_to

    def hold(self, seq: int) -> None:
        """Do not acknowledge datagram ``seq`` (delivered, in order) until
        :meth:`release`: its ack tells the peer more than "it arrived" (the server: the
        message was taken by the core). A retransmission meanwhile is a duplicate, dropped
        and not processed again."""
        if 0 < seq <= self._received_up_to:
            self._held.add(seq)

    def release(self, seq: int) -> None:
        if seq in self._held:
            self._held.discard(seq)
            self._ack_due = True

    def _selective_bits(self) -> int:
        ack = self.received_up_to
        arrived = set(self._buffer)
        if ack < self._received_up_to:  # held: what arrived after the first held one
            arrived.update(range(ack + 2, self._received_up_to + 1))
        bits = 0
        for seq in arrived - self._held:
            offset = seq - ack - 2
            if 0 <= offset < 32:
                bits |= 1 << offset
        return bits

    def datagrams_to_send(self, now: float) -> list[tuple[int, int, Body]]:
        """(seq, ack, body) to transmit now, in order; seq 0 for an explicit ACK."""
        if self.dead is not None:
            return []
        while self._waiting and len(self._in_flight) < self.config.window:
            if self._next_seq > MAX_U32:
                self.dead = ErrorCode.PROTOCOL_ERROR
                return []
            body = self._waiting.popleft()
            self._in_flight[self._next_seq] = _InFlight(self._next_seq, body, rto=self._rto)
            self._next_seq += 1
        out: list[tuple[int, int, Body]] = []
        for item in self._in_flight.values():
            if not item.due:
                continue
            item.due = False
            item.sent_at = now
            item.deadline = now + item.rto
            out.append((item.seq, self.received_up_to, item.body))
            self.stats.sent += 1
        if self._ack_due and (not out or self._buffer or self._held):
            out.append((0, self.received_up_to, Ack(self._selective_bits())))
        self._ack_due = False
        if out:
            self._last_sent = now
        return out

    # ---- receiving ----------------------------------------------------------------

    def _sample_rtt(self, rtt: float) -> None:
        if self._srtt is None:
            self._srtt, self._rttvar = rtt, rtt / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - rtt)
            self._srtt = 0.875 * self._srtt + 0.125 * rtt
        rto = self._srtt + max(0.01, 4 * self._rttvar)
        self._rto = min(max(rto, self.config.min_rto), self.config.max_rto)

    def _acknowledged(self, seq: int, now: float) -> None:
        item = self._in_flight.pop(seq, None)
        if item is not None and item.retransmits == 0 and not item.due:
            self._sample_rtt(max(now - item.sent_at, 0.0))

    def _take_acks(self, ack: int, selective: int, now: float) -> None:
        if ack >= self._next_seq:
            raise UinProtocolError("ack for a datagram never sent")
        for seq in [s for s in self._in_flight if s <= ack]:
            self._acknowledged(seq, now)
        if selective and ack + 2 + selective.bit_length() - 1 >= self._next_seq:
            raise UinProtocolError("selective ack for a datagram never sent")
        for i in range(32):
            if selective >> i & 1:
                self._acknowledged(ack + 2 + i, now)

    def receive(self, seq: int, ack: int, body: Body, now: float) -> list[Body]:
        """Take one authenticated datagram; the commands now deliverable, in order."""
        return [b for _, b in self.receive_numbered(seq, ack, body, now)]

    def receive_numbered(
        self, seq: int, ack: int, body: Body, now: float
    ) -> list[tuple[int, Body]]:
        """As :meth:`receive`, each command with its sequence number (0: unsequenced)."""
        if self.dead is not None:
            return []
        self._last_received = now
        self._take_acks(ack, body.selective if isinstance(body, Ack) else 0, now)
        unsequenced = body.COMMAND in UNSEQUENCED
        if unsequenced != (seq == 0):
            raise UinProtocolError(f"{body.COMMAND.name} with seq {seq}")
        if isinstance(body, Ack):
            return []
        if seq == 0:
            return [(0, body)]
        self.stats.received += 1
        if seq <= self._received_up_to or seq in self._buffer:
            self.stats.duplicates += 1
            self._ack_due = True
            return []
        if seq > self._received_up_to + self.config.receive_window:
            raise UinProtocolError(f"seq {seq} beyond the receive window")
        self._buffer[seq] = body
        self._ack_due = True
        ready: list[tuple[int, Body]] = []
        while self._received_up_to + 1 in self._buffer:
            self._received_up_to += 1
            ready.append((self._received_up_to, self._buffer.pop(self._received_up_to)))
        self.stats.delivered += len(ready)
        return ready

    # ---- time ---------------------------------------------------------------------

    def get_timer(self) -> float | None:
        if self.dead is not None:
            return None
        deadlines = [i.deadline for i in self._in_flight.values() if not i.due]
        deadlines.append(self._last_received + self.config.idle_timeout)
        if self.config.keepalive is not None and self.idle:
            deadlines.append(self._last_sent + self.config.keepalive)
        return min(deadlines)

    def handle_timer(self, now: float) -> None:
        if self.dead is not None:
            return
        if now >= self._last_received + self.config.idle_timeout:
            self.dead = ErrorCode.TIMEOUT
            return
        for item in self._in_flight.values():
            if item.due or now < item.deadline:
                continue
            if item.retransmits >= self.config.max_retransmits:
                self.dead = ErrorCode.TIMEOUT
                return
            item.retransmits += 1
            item.rto = min(item.rto * 2, self.config.max_rto)
            item.due = True
            self.stats.retransmitted += 1
        keepalive = self.config.keepalive
        if keepalive is not None and now >= self._last_sent + keepalive and self.idle:
            self.send(Ping())
