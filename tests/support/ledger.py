"""Sequence-number accounting for delivery tests: what one sender wrote to one
recipient, what the gateway acknowledged or refused, and what arrived.

A body is ``seq <stream> <n>`` (padded to ``width``), so a receiver can tell which
numbered message it got whatever else arrives. The report answers the delivery
contract's questions (docs/adr/0015-delivery-contract.md): every acknowledged number
arrived exactly once, in order; every number that did not arrive was refused to the
sender; nothing was left neither acknowledged nor refused.

Not tied to a network: the test calls :meth:`acked` / :meth:`refused` from its own
client's acknowledgements (MSN ``ACK``/``NAK``, OSCAR 04/0C / ICBM error, UIN ack /
``MESSAGE_FAILED``) and :meth:`received` with each text its recipient read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SEQ = re.compile(r"seq (\S+) (\d+)")


@dataclass(frozen=True, slots=True)
class LedgerReport:
    sent: int
    acknowledged: int
    refused: int
    delivered: int
    lost: tuple[int, ...]
    """Acknowledged, never arrived."""
    duplicated: tuple[int, ...]
    out_of_order: tuple[int, ...]
    """Arrived after a higher number had."""
    unanswered: tuple[int, ...]
    """Sent, neither acknowledged nor refused."""
    refused_but_delivered: tuple[int, ...]

    @property
    def clean(self) -> bool:
        """The contract held: nothing acknowledged was lost or duplicated, order was
        kept, every message was answered, and no refusal was a lie."""
        return not (
            self.lost
            or self.duplicated
            or self.out_of_order
            or self.unanswered
            or self.refused_but_delivered
        )

    def summary(self) -> str:
        def few(xs: tuple[int, ...]) -> str:
            return f"{len(xs)}" + (f" (first {list(xs[:5])})" if xs else "")

        return (
            f"sent {self.sent}, acknowledged {self.acknowledged}, refused {self.refused}, "
            f"delivered {self.delivered}, lost {few(self.lost)}, duplicated "
            f"{few(self.duplicated)}, out of order {few(self.out_of_order)}, unanswered "
            f"{few(self.unanswered)}, refused but delivered {few(self.refused_but_delivered)}"
        )


@dataclass
class SequenceLedger:
    """One numbered stream (one sender to one recipient)."""

    stream: str = "s"
    width: int = 32
    sent: list[int] = field(default_factory=list)
    _acked: set[int] = field(default_factory=set)
    _refused: set[int] = field(default_factory=set)
    _arrivals: list[int] = field(default_factory=list)

    def body(self, n: int) -> str:
        """The text of message ``n``, counted as sent."""
        self.sent.append(n)
        text = f"seq {self.stream} {n}"
        return text + " " + "." * max(0, self.width - len(text) - 1)

    def acked(self, n: int) -> None:
        self._acked.add(n)

    def refused(self, n: int) -> None:
        self._refused.add(n)

    def received(self, text: str) -> int | None:
        """Count one text the recipient read; its number, or None when it is not one
        of this stream's."""
        match = _SEQ.search(text)
        if match is None or match.group(1) != self.stream:
            return None
        n = int(match.group(2))
        self._arrivals.append(n)
        return n

    @property
    def arrived(self) -> list[int]:
        return list(self._arrivals)

    def report(self) -> LedgerReport:
        seen: set[int] = set()
        duplicated: list[int] = []
        out_of_order: list[int] = []
        highest = -1
        for n in self._arrivals:
            if n in seen:
                duplicated.append(n)
                continue
            seen.add(n)
            if n < highest:
                out_of_order.append(n)
            highest = max(highest, n)
        answered = self._acked | self._refused
        return LedgerReport(
            sent=len(self.sent),
            acknowledged=len(self._acked),
            refused=len(self._refused),
            delivered=len(seen),
            lost=tuple(sorted(self._acked - seen)),
            duplicated=tuple(duplicated),
            out_of_order=tuple(out_of_order),
            unanswered=tuple(n for n in self.sent if n not in answered),
            refused_but_delivered=tuple(sorted(self._refused & seen)),
        )
