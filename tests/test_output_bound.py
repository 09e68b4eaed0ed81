"""A client that stops reading is disconnected before its connection holds more than a
bounded amount (adapters/output_bound.py), on Twisted's StringTransport and a fake clock."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from adapters.output_bound import OutputBound, OutputLimits


def make(
    limit: int = 100, stall: float = 30.0
) -> tuple[OutputBound, StringTransport, Clock, list[str]]:
    transport, clock, why = StringTransport(), Clock(), []
    bound = OutputBound(transport, clock, why.append, OutputLimits(limit, stall))
    return bound, transport, clock, why


def test_registers_as_the_transports_streaming_producer() -> None:
    """The transport tells the guard when its buffer is full: it is the producer."""
    bound, transport, _, _ = make()
    assert transport.producer is bound and transport.streaming


def test_writes_pass_through_while_the_client_reads() -> None:
    """Not paused: everything goes to the transport, whatever its size."""
    bound, transport, _, why = make(limit=10)
    assert bound.write(b"x" * 1000)
    assert transport.value() == b"x" * 1000 and why == []


def test_a_paused_connection_past_its_limit_is_aborted_once() -> None:
    """Paused, the limit counts what is written on top; past it: abort, said once."""
    bound, transport, _, why = make(limit=100)
    bound.pauseProducing()
    assert bound.write(b"a" * 60) and bound.write(b"b" * 40)
    assert not bound.write(b"c")
    assert transport.disconnecting and bound.aborted
    assert not bound.write(b"d")
    assert len(why) == 1 and "not reading" in why[0]
    assert b"c" not in transport.value()


def test_resuming_resets_the_count() -> None:
    """A client that drains its socket starts from zero again."""
    bound, transport, _, why = make(limit=100)
    bound.pauseProducing()
    bound.write(b"a" * 90)
    bound.resumeProducing()
    bound.pauseProducing()
    assert bound.write(b"b" * 90)
    assert not transport.disconnecting and why == []


def test_a_client_that_never_drains_is_aborted_after_the_stall_time() -> None:
    """Paused for stall_seconds without a resume: aborted even if nothing more is written."""
    bound, transport, clock, why = make(stall=30.0)
    bound.pauseProducing()
    clock.advance(29.0)
    assert not transport.disconnecting
    clock.advance(1.0)
    assert transport.disconnecting and len(why) == 1 and "30 s" in why[0]


def test_a_drain_before_the_stall_time_cancels_it() -> None:
    """Resumed in time: the stall timer is cancelled and nothing happens."""
    bound, transport, clock, why = make(stall=30.0)
    bound.pauseProducing()
    clock.advance(10.0)
    bound.resumeProducing()
    clock.advance(60.0)
    assert not transport.disconnecting and why == [] and not clock.getDelayedCalls()
