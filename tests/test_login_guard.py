"""Logins cannot stall the gateway: per-source and per-account brakes, password checks
off the event loop in a bounded pool (gateway/login_guard.py), against a real Redis."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from gateway import core as core_module
from gateway.core import GatewayCore
from gateway.credentials import SealingKey
from gateway.login_guard import LoginPolicy, SourceBuckets, Verifier, VerifierBusy
from gateway.store import Store
from schema.records import LoginOutcome, PlainPasswordProof

SEALING = SealingKey(b"g" * 32)
ALICE = "msn:alice@example.com"


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


async def make_core(redis_url: str, policy: LoginPolicy) -> tuple[Store, GatewayCore]:
    store = Store.open(redis_url, SEALING)
    await store.accounts.create("msn", "alice@example.com", "right-pw", "Alice")
    return store, GatewayCore(store, SEALING, "node-login", login_policy=policy)


async def attempt(core: GatewayCore, password: str, source: str = "") -> LoginOutcome:
    result = await core.check_login(ALICE, PlainPasswordProof(password), source)
    return result.outcome


def test_source_bucket_allows_a_burst_then_the_sustained_rate() -> None:
    """A source gets `burst` attempts at once, then one per 1/rate seconds; others are free."""
    now = [0.0]
    buckets = SourceBuckets(rate=2.0, burst=3, max_sources=10, clock=lambda: now[0])
    assert [buckets.take("10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert buckets.take("10.0.0.2")
    now[0] += 0.5
    assert buckets.take("10.0.0.1") and not buckets.take("10.0.0.1")


def test_source_buckets_are_bounded_in_number() -> None:
    """Past max_sources the least recently used source is forgotten (memory is bounded)."""
    buckets = SourceBuckets(rate=0.0, burst=1, max_sources=2, clock=lambda: 0.0)
    for source in ("a", "b", "c"):
        assert buckets.take(source)
    assert len(buckets._buckets) == 2
    assert buckets.take("a")  # forgotten, so a full bucket again
    assert not buckets.take("c")


def test_account_locks_after_free_failures_and_refuses_even_the_right_password(
    redis_url: str,
) -> None:
    """5 wrong answers lock the account: the right password is THROTTLED until the
    backoff ends, then accepted, and success clears the count."""

    async def scenario() -> None:
        policy = LoginPolicy(free_failures=5, first_backoff=0.3, max_backoff=1.0)
        store, core = await make_core(redis_url, policy)
        try:
            outcomes = [await attempt(core, f"guess-{i}") for i in range(5)]
            assert outcomes == [LoginOutcome.BAD_PASSWORD] * 5
            assert await attempt(core, "right-pw") is LoginOutcome.THROTTLED
            await asyncio.sleep(0.4)
            assert await attempt(core, "right-pw") is LoginOutcome.OK
            assert await store.redis.exists(f"gw:login:{{{ALICE}}}:fails") == 0
        finally:
            core.login_guard.close()
            await store.close()

    run(scenario)


def test_unknown_accounts_are_counted_and_locked_like_real_ones(redis_url: str) -> None:
    """Guessing at an address with no account locks it the same way, and the
    unknown-account check does a password check's work (timing tells nothing)."""

    async def scenario() -> None:
        store, core = await make_core(redis_url, LoginPolicy(free_failures=2, first_backoff=5))
        calls: list[object] = []
        real = core_module.dummy_check

        def counting(proof: Any) -> Any:
            calls.append(proof)
            return real(proof)

        core_module.dummy_check = counting
        try:
            nobody = "msn:nobody@example.com"
            first = await core.check_login(nobody, PlainPasswordProof("x"))
            second = await core.check_login(nobody, PlainPasswordProof("x"))
            third = await core.check_login(nobody, PlainPasswordProof("x"))
            assert [first.outcome, second.outcome, third.outcome] == [
                LoginOutcome.NO_SUCH_ACCOUNT,
                LoginOutcome.NO_SUCH_ACCOUNT,
                LoginOutcome.THROTTLED,
            ]
            assert len(calls) == 2
        finally:
            core_module.dummy_check = real
            core.login_guard.close()
            await store.close()

    run(scenario)


def test_per_source_brake_refuses_a_flood_from_one_host_only(redis_url: str) -> None:
    """Past its burst a source is THROTTLED without a password check; another host logs in."""

    async def scenario() -> None:
        policy = LoginPolicy(source_rate=0.001, source_burst=3, free_failures=100)
        store, core = await make_core(redis_url, policy)
        try:
            flood = [await attempt(core, "wrong", "192.0.2.7") for _ in range(5)]
            assert flood[:3] == [LoginOutcome.BAD_PASSWORD] * 3
            assert flood[3:] == [LoginOutcome.THROTTLED] * 2
            assert await attempt(core, "right-pw", "192.0.2.8") is LoginOutcome.OK
        finally:
            core.login_guard.close()
            await store.close()

    run(scenario)


def test_password_checks_run_off_the_event_loop_thread(redis_url: str) -> None:
    """The password check runs in a worker thread, never on the loop's thread."""

    async def scenario() -> None:
        store, core = await make_core(redis_url, LoginPolicy())
        threads: list[int] = []
        real = core_module.check_proof

        def recording(*args: Any) -> Any:
            threads.append(threading.get_ident())
            return real(*args)

        core_module.check_proof = recording
        try:
            assert await attempt(core, "right-pw") is LoginOutcome.OK
            assert threads and threads[0] != threading.get_ident()
        finally:
            core_module.check_proof = real
            core.login_guard.close()
            await store.close()

    run(scenario)


def test_verifier_refuses_past_its_queue_instead_of_waiting_without_bound() -> None:
    """With every worker busy and the line full, one more check raises VerifierBusy."""

    async def scenario() -> None:
        verifier = Verifier(workers=1, queue=1)
        gate = threading.Event()
        first = asyncio.ensure_future(verifier.run(gate.wait))
        second = asyncio.ensure_future(verifier.run(gate.wait))
        await asyncio.sleep(0)
        with pytest.raises(VerifierBusy):
            await verifier.run(gate.wait)
        gate.set()
        assert await first and await second
        assert verifier.in_flight == 0
        verifier.close()

    run(scenario)
