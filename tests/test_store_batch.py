"""ScriptBatcher against the real Redis: concurrent calls share one pipeline, every
caller gets its own reply in call order, and a script Redis forgot is loaded again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from gateway.store.connection import ScriptBatcher, connect
from tests.support.aio import LoopRunner

APPEND = "redis.call('RPUSH', KEYS[1], ARGV[1]) return {ARGV[1], redis.call('LLEN', KEYS[1])}"
FAIL_ON_BAD = "if ARGV[1] == 'bad' then return redis.error_reply('BAD input') end return ARGV[1]"


@pytest.fixture
def run() -> Iterator[LoopRunner]:
    runner = LoopRunner()
    yield runner
    runner.close()


def test_concurrent_calls_keep_order_and_get_their_own_replies(
    redis_url: str, run: LoopRunner
) -> None:
    async def go() -> None:
        redis = connect(redis_url)
        try:
            batcher = ScriptBatcher(redis, redis.register_script(APPEND))
            replies = await asyncio.gather(*(batcher(["log"], [f"m{i}"]) for i in range(600)))
            assert replies == [[f"m{i}", i + 1] for i in range(600)]
            assert await redis.lrange("log", 0, -1) == [f"m{i}" for i in range(600)]
        finally:
            await redis.aclose()

    run(go())


def test_one_failing_call_does_not_fail_the_others(redis_url: str, run: LoopRunner) -> None:
    async def go() -> None:
        redis = connect(redis_url)
        try:
            batcher = ScriptBatcher(redis, redis.register_script(FAIL_ON_BAD))
            results = await asyncio.gather(
                batcher([], ["a"]), batcher([], ["bad"]), batcher([], ["c"]), return_exceptions=True
            )
            assert results[0] == "a" and results[2] == "c"
            assert isinstance(results[1], Exception) and "BAD input" in str(results[1])
        finally:
            await redis.aclose()

    run(go())


def test_a_flushed_script_is_loaded_again(redis_url: str, run: LoopRunner) -> None:
    """After a Redis restart scripts are gone (NOSCRIPT): the calls still succeed."""

    async def go() -> None:
        redis = connect(redis_url)
        try:
            batcher = ScriptBatcher(redis, redis.register_script(APPEND))
            await batcher(["log2"], ["first"])
            await redis.script_flush()
            replies = await asyncio.gather(*(batcher(["log2"], [f"n{i}"]) for i in range(5)))
            assert [r[0] for r in replies] == [f"n{i}" for i in range(5)]
            assert await redis.llen("log2") == 6
        finally:
            await redis.aclose()

    run(go())
