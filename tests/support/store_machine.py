"""What every stateful (hypothesis) test of the store starts from: an empty real Redis,
a store on it, a loop to run its coroutines, and both closed at the end."""

from __future__ import annotations

import redis as sync_redis
from hypothesis.stateful import RuleBasedStateMachine

from gateway.credentials import SealingKey
from gateway.store import Store
from tests.support.aio import LoopRunner


class StoreMachine(RuleBasedStateMachine):
    redis_url = ""
    key = SealingKey(b"m" * 32)

    def __init__(self) -> None:
        super().__init__()
        client = sync_redis.Redis.from_url(self.redis_url)
        client.flushall()
        client.close()
        self.run = LoopRunner()
        self.store = Store.open(self.redis_url, self.key)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.run.close()
