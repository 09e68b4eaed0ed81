"""The node's fact cache against the real Redis: it serves repeated reads from memory,
and forgets a fact as soon as any process (another store connection: the admin API, the
CLI, another node) changes it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest

from gateway.credentials import SealingKey
from gateway.facts import Facts
from gateway.store import Store
from schema.records import AccountInfo, ContactEntry
from tests.support.aio import LoopRunner

KEY = SealingKey(b"f" * 32)


@pytest.fixture
def run() -> Iterator[LoopRunner]:
    runner = LoopRunner()
    yield runner
    runner.close()


async def _until(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.02)):
        if await check():
            return True
        await asyncio.sleep(0.02)
    return False


async def _with_facts(url: str, body: Callable[[Store, Store, Facts], Awaitable[None]]) -> None:
    mine, other = Store.open(url, KEY), Store.open(url, KEY)
    facts = Facts(mine)
    await facts.start()
    try:
        assert await _until(lambda: _true(facts._subscribed))
        await body(mine, other, facts)
    finally:
        await facts.stop()
        await mine.close()
        await other.close()


async def _true(value: bool) -> bool:
    return value


def test_repeated_reads_come_from_memory(redis_url: str, run: LoopRunner) -> None:
    async def body(mine: Store, other: Store, facts: Facts) -> None:
        await other.accounts.create("msn", "bob@example.com", "pw", "Bob")
        await asyncio.sleep(0.3)  # let the creation's own announcement pass first
        for _ in range(5):
            info = await facts.info("msn:bob@example.com")
            assert info == AccountInfo("msn:bob@example.com", "Bob", False)
            assert await facts.owner("msn:bob@example.com") == "msn:bob@example.com"
            assert await facts.linked("msn:bob@example.com") == ["msn:bob@example.com"]
        assert facts.misses == 3 and facts.hits == 12

    run(_with_facts(redis_url, body))


def test_another_process_change_is_seen_at_once(redis_url: str, run: LoopRunner) -> None:
    """Disable, rename, link and block through a second store connection (as the admin
    API or the CLI would): the cache forgets each, no time limit needed."""

    async def body(mine: Store, other: Store, facts: Facts) -> None:
        await other.accounts.create("msn", "bob@example.com", "pw", "Bob")
        await other.accounts.create("uin", "700123", "pw", "Chul")
        bob, chul = "msn:bob@example.com", "uin:700123"
        assert not (await facts.info(bob)).disabled  # type: ignore[union-attr]
        assert await facts.contact(bob, chul) is None
        assert await facts.linked(chul) == [chul]

        await other.accounts.set_disabled(bob, True)
        assert await _until(lambda: _disabled(facts, bob))
        await other.accounts.set_display_name(chul, "철수")
        assert await _until(lambda: _named(facts, chul, "철수"))
        await other.identity.link([bob, chul])
        assert await _until(lambda: _linked(facts, chul, [bob, chul]))
        await other.contacts.put(bob, ContactEntry(contact=chul, blocked=True))
        assert await _until(lambda: _blocked(facts, bob, chul))
        await other.identity.unlink(bob)
        assert await _until(lambda: _linked(facts, chul, [chul]))

    run(_with_facts(redis_url, body))


async def _disabled(facts: Facts, address: str) -> bool:
    info = await facts.info(address)
    return info is not None and info.disabled


async def _named(facts: Facts, address: str, name: str) -> bool:
    info = await facts.info(address)
    return info is not None and info.display_name == name


async def _linked(facts: Facts, address: str, expected: list[str]) -> bool:
    return sorted(await facts.linked(address)) == sorted(expected)


async def _blocked(facts: Facts, owner: str, contact: str) -> bool:
    entry = await facts.contact(owner, contact)
    return entry is not None and entry.blocked


def test_nobody_is_never_cached(redis_url: str, run: LoopRunner) -> None:
    """An id nobody owns yet may be claimed any moment: "nobody" is asked again."""

    async def body(mine: Store, other: Store, facts: Facts) -> None:
        assert await facts.owner("uin:700999") is None
        await other.accounts.create("uin", "700999", "pw")
        assert await facts.owner("uin:700999") == "uin:700999"

    run(_with_facts(redis_url, body))


def test_a_read_racing_a_change_is_not_kept(redis_url: str, run: LoopRunner) -> None:
    """An answer loaded while a change was announced may be the old one: not kept."""

    async def body(mine: Store, other: Store, facts: Facts) -> None:
        await other.accounts.create("msn", "bob@example.com", "pw", "Bob")
        real_info = mine.accounts.info

        async def slow_info(address: str) -> AccountInfo | None:
            info = await real_info(address)
            facts.forget_accounts(address)  # the announcement lands meanwhile
            return info

        mine.accounts.info = slow_info  # type: ignore[method-assign]
        await facts.info("msn:bob@example.com")
        mine.accounts.info = real_info  # type: ignore[method-assign]
        misses = facts.misses
        await facts.info("msn:bob@example.com")
        assert facts.misses == misses + 1

    run(_with_facts(redis_url, body))


def test_nothing_is_cached_without_the_change_feed(redis_url: str, run: LoopRunner) -> None:
    async def body(mine: Store, other: Store, facts: Facts) -> None:
        await other.accounts.create("msn", "bob@example.com", "pw", "Bob")
        await facts.stop()
        await facts.info("msn:bob@example.com")
        await facts.info("msn:bob@example.com")
        assert facts.hits == 0 and facts.misses == 2

    run(_with_facts(redis_url, body))
