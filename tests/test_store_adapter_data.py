"""Adapter-private data: one bounded hash per account, on a real Redis server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis as sync_redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from adapters.contract import MAX_ADAPTER_DATA_BYTES, MAX_ADAPTER_DATA_KEYS
from gateway.core import GatewayCore
from gateway.credentials import SealingKey
from gateway.store import Store, keys
from gateway.store.adapter_data import MAX_BYTES, MAX_KEYS, AdapterDataRefused
from tests.support.aio import LoopRunner
from tests.support.store_machine import StoreMachine as BaseMachine

KEY = SealingKey(b"d" * 32)
ALICE = "msn:alice@example.com"
BOB = "oscar:12345"


@pytest.fixture
def store(redis_url: str) -> Iterator[tuple[Store, LoopRunner]]:
    run = LoopRunner()
    store = Store.open(redis_url, KEY)
    run(store.accounts.create("msn", "alice@example.com", "pw"))
    run(store.accounts.create("oscar", "12345", "pw"))
    yield store, run
    run(store.close())
    run.close()


def test_contract_states_the_store_bounds() -> None:
    """The bounds adapter authors read in the contract are the ones the store enforces."""
    assert (MAX_ADAPTER_DATA_KEYS, MAX_ADAPTER_DATA_BYTES) == (MAX_KEYS, MAX_BYTES) == (64, 65536)


def test_values_round_trip_and_none_deletes(store: tuple[Store, LoopRunner]) -> None:
    """Fields set in one call come back; None deletes one and leaves the others."""
    s, run = store
    assert run(s.adapter_data.get(ALICE)) == {}
    run(s.adapter_data.update(ALICE, {"gtc": "N", "groups": '["Friends"]'}))
    run(s.adapter_data.update(ALICE, {"gtc": None, "extra": "é"}))
    assert run(s.adapter_data.get(ALICE)) == {"groups": '["Friends"]', "extra": "é"}


def test_data_is_per_owner_and_follows_address_normalisation(
    store: tuple[Store, LoopRunner],
) -> None:
    """Each owner has their own fields; two spellings of one address are one owner."""
    s, run = store
    run(s.adapter_data.update("msn:Alice@Example.COM", {"k": "alice"}))
    run(s.adapter_data.update(BOB, {"k": "bob"}))
    assert run(s.adapter_data.get(ALICE)) == {"k": "alice"}
    assert run(s.adapter_data.get(BOB)) == {"k": "bob"}


def test_key_shares_the_accounts_hash_tag() -> None:
    """The hash lives in the account's cluster slot (same ``{address}`` tag)."""
    assert "{" + ALICE + "}" in keys.adapter_data(ALICE)
    assert keys.adapter_data(ALICE).split("{")[1] == keys.account(ALICE).split("{")[1]


def test_key_bound_refuses_the_whole_write(store: tuple[Store, LoopRunner]) -> None:
    """64 fields fit; a write that would make 65 is refused and writes nothing of itself."""
    s, run = store
    run(s.adapter_data.update(ALICE, {f"f{i}": "v" for i in range(MAX_KEYS)}))
    with pytest.raises(ValueError, match="fields"):
        run(s.adapter_data.update(ALICE, {"f0": "changed", "one-more": "v"}))
    data = run(s.adapter_data.get(ALICE))
    assert len(data) == MAX_KEYS and data["f0"] == "v" and "one-more" not in data
    run(s.adapter_data.update(ALICE, {"f0": None, "one-more": "v"}))  # a delete makes room
    assert "one-more" in run(s.adapter_data.get(ALICE))


def test_byte_bound_counts_utf8_names_and_values(store: tuple[Store, LoopRunner]) -> None:
    """Exactly 64 KiB (names plus UTF-8 values) fits; one byte more is refused."""
    s, run = store
    run(s.adapter_data.update(ALICE, {"a": "x" * (MAX_BYTES - 1)}))
    with pytest.raises(AdapterDataRefused, match="bytes"):
        run(s.adapter_data.update(ALICE, {"b": ""}))  # the name alone is one byte
    run(s.adapter_data.update(ALICE, {"a": "é" * ((MAX_BYTES - 1) // 2)}))  # 2 bytes each
    with pytest.raises(AdapterDataRefused):
        run(s.adapter_data.update(ALICE, {"a": "é" * (MAX_BYTES // 2)}))
    assert run(s.adapter_data.get(ALICE)) == {"a": "é" * ((MAX_BYTES - 1) // 2)}


def test_oversized_write_is_refused_before_redis(store: tuple[Store, LoopRunner]) -> None:
    """A single write over a bound, or with a bad field name, never reaches Redis."""
    s, run = store
    for values in (
        {f"f{i}": "v" for i in range(MAX_KEYS + 1)},
        {"a": "x" * MAX_BYTES},
        {"": "v"},
        {"n" * 257: "v"},
        {"a": "\ud800"},  # a lone surrogate cannot be UTF-8
    ):
        with pytest.raises(AdapterDataRefused):
            run(s.adapter_data.update(ALICE, values))
    assert run(s.adapter_data.get(ALICE)) == {}


def test_no_data_for_an_account_that_does_not_exist(store: tuple[Store, LoopRunner]) -> None:
    """Writing for an unknown (or deleted) account is refused; a bad address is a ValueError."""
    s, run = store
    with pytest.raises(AdapterDataRefused, match="no such account"):
        run(s.adapter_data.update("msn:nobody@example.com", {"k": "v"}))
    with pytest.raises(ValueError):
        run(s.adapter_data.update("not an address", {"k": "v"}))
    assert run(s.adapter_data.get("msn:nobody@example.com")) == {}


def test_account_delete_removes_the_data(store: tuple[Store, LoopRunner], redis_url: str) -> None:
    """Deleting an account deletes its adapter data with it."""
    s, run = store
    run(s.adapter_data.update(ALICE, {"k": "v"}))
    run(s.accounts.delete(ALICE))
    client = sync_redis.Redis.from_url(redis_url)
    try:
        assert client.exists(keys.adapter_data(ALICE)) == 0
    finally:
        client.close()
    run(s.accounts.create("msn", "alice@example.com", "pw"))
    assert run(s.adapter_data.get(ALICE)) == {}


def test_core_serves_adapter_data(store: tuple[Store, LoopRunner]) -> None:
    """GatewayCore.adapter_data / set_adapter_data are the store's, ValueError included."""
    s, run = store
    core = GatewayCore(s, KEY, "node-x")
    run(core.set_adapter_data(BOB, {"feedbag.extras": "[]"}))
    assert run(core.adapter_data(BOB)) == {"feedbag.extras": "[]"}
    with pytest.raises(ValueError):
        run(core.set_adapter_data(BOB, {"x": "y" * MAX_BYTES}))


OWNERS = [ALICE, BOB, "uin:700123"]
FIELDS = ["gtc", "groups", "extras", "é"]
# A big value is drawn as its length (a 30 kB repr helps nobody reading a failure).
VALUES = st.one_of(st.none(), st.text(max_size=40), st.integers(25_000, 45_000))


@pytest.fixture
def data_machine(redis_url: str) -> type[RuleBasedStateMachine]:
    class AdapterDataMachine(BaseMachine):
        """Model: owner -> dict; accounts set; bounds applied to the model's result."""

        def __init__(self) -> None:
            super().__init__()
            self.accounts: set[str] = set()
            self.data: dict[str, dict[str, str]] = {}

        @rule(owner=st.sampled_from(OWNERS))
        def create(self, owner: str) -> None:
            if owner in self.accounts:
                return
            network, native = owner.split(":", 1)
            self.run(self.store.accounts.create(network, native, "pw"))
            self.accounts.add(owner)

        @rule(owner=st.sampled_from(OWNERS))
        def delete(self, owner: str) -> None:
            if owner not in self.accounts:
                return
            self.run(self.store.accounts.delete(owner))
            self.accounts.discard(owner)
            self.data.pop(owner, None)

        @rule(
            owner=st.sampled_from(OWNERS),
            drawn=st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=4),
        )
        def update(self, owner: str, drawn: dict[str, str | int | None]) -> None:
            values = {k: "x" * v if isinstance(v, int) else v for k, v in drawn.items()}
            after = dict(self.data.get(owner, {}))
            for field, value in values.items():
                if value is None:
                    after.pop(field, None)
                else:
                    after[field] = value
            size = sum(len(k.encode()) + len(v.encode()) for k, v in after.items())
            if values and (owner not in self.accounts or size > MAX_BYTES):
                with pytest.raises(AdapterDataRefused):
                    self.run(self.store.adapter_data.update(owner, values))
                return
            self.run(self.store.adapter_data.update(owner, values))  # empty: a no-op for anyone
            if values:
                self.data[owner] = after

        @invariant()
        def redis_matches_model(self) -> None:
            for owner in OWNERS:
                got = self.run(self.store.adapter_data.get(owner))
                assert got == self.data.get(owner, {})

    AdapterDataMachine.redis_url = redis_url
    AdapterDataMachine.key = KEY
    return AdapterDataMachine


def test_adapter_data_matches_model(data_machine: type[RuleBasedStateMachine]) -> None:
    """Random sets, deletes and account deletions agree with a dict model, bounds included."""
    state_test = data_machine.TestCase
    state_test.settings = settings(
        max_examples=20,
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    state_test().runTest()
