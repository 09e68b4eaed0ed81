"""A linked person is reached where they last wrote: writing a message marks that
session the most recently active (real Redis, an in-process core)."""

from __future__ import annotations

import asyncio

import pytest

from gateway import core as core_module
from schema.events import Message
from tests.test_bot import online, running_core


async def _scenario(redis_url: str) -> tuple[int, int]:
    async with running_core(redis_url) as core:
        store = core.store
        await store.accounts.create("uin", "700456", "pw", "Carol")
        await store.accounts.create("msn", "carol@example.com", "pw", "Carol")
        await store.accounts.create("oscar", "123456", "pw", "Ivan")
        await store.identity.link(["uin:700456", "msn:carol@example.com"])
        on_uin = await online(core, "uin:700456")
        await asyncio.sleep(0.01)
        on_msn = await online(core, "msn:carol@example.com")  # logged in last
        await online(core, "oscar:123456")
        # Carol writes from UIN: that session is now her most recently active one.
        await core.submit(Message(sender="uin:700456", recipient="oscar:123456", body="hi"))
        await core.submit(
            Message(sender="oscar:123456", recipient="msn:carol@example.com", body="back")
        )
        got_uin = sum(1 for d in on_uin.got if isinstance(d.event, Message))
        got_msn = sum(1 for d in on_msn.got if isinstance(d.event, Message))
        return got_uin, got_msn


def test_the_session_that_wrote_last_gets_the_reply(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_module, "ACTIVE_EVERY", 0.0)  # no throttle in the test
    assert asyncio.run(_scenario(redis_url)) == (1, 0)


def test_without_writing_the_newest_login_gets_it(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: with activity never written, the later login (MSN) is chosen, so
    the test above does show the effect of writing."""
    monkeypatch.setattr(core_module, "ACTIVE_EVERY", 1e9)
    assert asyncio.run(_scenario(redis_url)) == (0, 1)
