"""Message bodies and the accounting of what was sent and what arrived.

Every benchmark message body is ``bm <step> <pair> <seq> <sent_ns>`` padded with ``.``
to a fixed length. ``sent_ns`` is the sender's ``time.perf_counter_ns()`` taken just
before the write (CLOCK_MONOTONIC: the same clock in every process of this host), so
the receiver computes the latency from the sender's write to its own read. ``seq``
counts per pair over the whole run: a sequence number seen twice is a duplicate, one
lower than the highest seen so far is out of order, and what was sent in a step but
never read is lost.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

BODY_CHARS = 64
"""Every message body is this long (the relay baseline sends frames of the same size)."""

_TOKEN = re.compile(r"bm (\d{1,9}) (\d{1,9}) (\d{1,12}) (\d{1,20})")


def message_body(step: int, pair: int, seq: int, sent_ns: int) -> str:
    text = f"bm {step} {pair} {seq} {sent_ns} "
    return text + "." * max(0, BODY_CHARS - len(text))


@dataclass
class StepTally:
    """What one measured step sent and what arrived of it."""

    step: int
    sent: int = 0
    received: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    latencies_ns: array[int] = field(default_factory=lambda: array("q"))
    first_send_ns: int = 0
    last_send_ns: int = 0
    last_receive_ns: int = 0

    @property
    def outstanding(self) -> int:
        return self.sent - self.received


@dataclass
class _PairState:
    next_seq: int = 0
    highest: int = -1
    seen: set[int] = field(default_factory=set)


ReceiveHook = Callable[[int, int], None]
"""Called with (step, pair) for every message that arrives (closed-loop sending)."""


class Ledger:
    """Per-pair sequence numbers and per-step tallies for one load generator process."""

    def __init__(self) -> None:
        self.steps: dict[int, StepTally] = {}
        self._pairs: dict[int, _PairState] = {}
        self.foreign = 0  # texts that arrived without a benchmark token
        self.errors: dict[str, int] = {}
        self.on_receive: ReceiveHook | None = None

    def tally(self, step: int) -> StepTally:
        tally = self.steps.get(step)
        if tally is None:
            tally = self.steps[step] = StepTally(step)
        return tally

    def next_body(self, step: int, pair: int, now_ns: int) -> str:
        """The body of the next message of ``pair``, counted as sent at ``now_ns``."""
        state = self._pairs.get(pair)
        if state is None:
            state = self._pairs[pair] = _PairState()
        seq = state.next_seq
        state.next_seq += 1
        tally = self.tally(step)
        if tally.sent == 0:
            tally.first_send_ns = now_ns
        tally.sent += 1
        tally.last_send_ns = now_ns
        return message_body(step, pair, seq, now_ns)

    def unsend(self, step: int) -> None:
        """The last counted message could not be written after all."""
        self.tally(step).sent -= 1

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def receive_text(self, text: str, now_ns: int) -> int:
        """Account for every token in ``text`` (read at ``now_ns``); returns how many."""
        found = 0
        for match in _TOKEN.finditer(text):
            found += 1
            step, pair, seq, sent_ns = (int(g) for g in match.groups())
            self._receive(step, pair, seq, sent_ns, now_ns)
        if not found:
            self.foreign += 1
        return found

    def _receive(self, step: int, pair: int, seq: int, sent_ns: int, now_ns: int) -> None:
        state = self._pairs.get(pair)
        tally = self.steps.get(step)
        if state is None or tally is None or seq >= state.next_seq:
            self.foreign += 1  # not something this process sent
            return
        if seq in state.seen:
            tally.duplicates += 1
            return
        state.seen.add(seq)
        if seq < state.highest:
            tally.out_of_order += 1
        else:
            state.highest = seq
        tally.received += 1
        tally.latencies_ns.append(max(0, now_ns - sent_ns))
        tally.last_receive_ns = now_ns
        if self.on_receive is not None:
            self.on_receive(step, pair)


def percentile(sorted_values: array[int] | list[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending sequence (0 when empty)."""
    if not sorted_values:
        return 0
    rank = max(1, -(-int(fraction * 1_000_000) * len(sorted_values) // 1_000_000))
    return int(sorted_values[min(rank, len(sorted_values)) - 1])
