"""adapters.timers.aim on Twisted's own test clock: a later deadline keeps the timer
(no heap search), a sooner one replaces it, none cancels it, and early firing re-aims."""

from __future__ import annotations

from twisted.internet.task import Clock

from adapters.timers import Timer, aim


def test_later_deadline_keeps_sooner_replaces_none_cancels() -> None:
    clock = Clock()
    fired: list[float] = []
    timer: Timer | None = aim(None, 10.0, clock, lambda: fired.append(clock.seconds()))
    assert timer is not None and timer.getTime() == 10.0
    same = aim(timer, 25.0, clock, lambda: fired.append(clock.seconds()))
    assert same is timer and len(clock.getDelayedCalls()) == 1  # kept: fires early
    sooner = aim(same, 5.0, clock, lambda: fired.append(clock.seconds()))
    assert sooner is not timer and not timer.active() and sooner is not None
    assert sooner.getTime() == 5.0
    assert aim(sooner, None, clock, lambda: None) is None and not sooner.active()
    clock.advance(30)
    assert fired == []


def test_an_early_fire_finds_nothing_due_and_aims_again() -> None:
    """What a connection does: the session's deadline moved later; the kept timer fires
    at the old time, the session says nothing is due, the timer is aimed at the new."""
    clock = Clock()
    deadline = [10.0]
    due: list[float] = []
    timer: list[Timer | None] = [None]

    def fire() -> None:
        if clock.seconds() >= deadline[0]:
            due.append(clock.seconds())
            return
        timer[0] = aim(None, deadline[0], clock, fire)

    timer[0] = aim(None, deadline[0], clock, fire)
    deadline[0] = 18.0
    timer[0] = aim(timer[0], deadline[0], clock, fire)
    clock.advance(10)
    assert due == [] and timer[0] is not None and timer[0].getTime() == 18.0
    clock.advance(8)
    assert due == [18.0]
