"""Which accounts are the gateway bot: ``ns:{N}:bots`` beside the namespace it lives in.

A bot account is claimed in its network's namespace like any account, and in the same
atomic step recorded as a bot. A native id that was already claimed (a user's account,
or a user's alias) is never turned into the bot; an id recorded as the bot is never
treated as a user's. Several nodes starting at once all get the same answer.
"""

from __future__ import annotations

from enum import StrEnum
from typing import cast

from redis.asyncio import Redis

from gateway.store import keys

# KEYS: ns owner, ns accounts, ns bots; ARGV: native id, address.
# 'claimed': the id was free and is now the bot's; 'bot': it already was the bot's;
# 'taken': someone else (a user's account or alias) holds it.
CLAIM_BOT = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[2])
  redis.call('SADD', KEYS[3], ARGV[2])
  return 'claimed'
end
if cur == ARGV[2] and redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[2])
  return 'bot'
end
return 'taken'
"""


class BotClaim(StrEnum):
    CLAIMED = "claimed"
    BOT = "bot"
    TAKEN = "taken"


class BotRegistry:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._claim = redis.register_script(CLAIM_BOT)

    async def claim(self, network: str, native: str) -> BotClaim:
        """Claim ``network:native`` (already normalised) for the bot."""
        address = f"{network}:{native}"
        answer = await self._claim(
            keys=[keys.ns_owner(network), keys.ns_accounts(network), keys.ns_bots(network)],
            args=[native, address],
        )
        return BotClaim(answer)

    async def is_bot(self, address: str) -> bool:
        network, _, _ = address.partition(":")
        return bool(await self._redis.sismember(keys.ns_bots(network), address))

    async def bots(self, network: str) -> set[str]:
        return cast(set[str], await self._redis.smembers(keys.ns_bots(network)))
