"""Accounts, links and aliases against a plain-dict model, on a real Redis server."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gateway.credentials import SealingKey
from gateway.store import AccountError
from tests.support.store_machine import StoreMachine as BaseMachine

KEY = SealingKey(b"m" * 32)
HANDLES = {
    "oscar": ["12345", "coolkid", "2000000001"],
    "msn": ["a@b.cd", "bob@example.com"],
    "uin": ["700123", "2000000002", "700124"],
}
ADDRESSES = [f"{n}:{h}" for n, hs in HANDLES.items() for h in hs]


@pytest.fixture
def store_machine(redis_url: str) -> type[RuleBasedStateMachine]:
    class StoreMachine(BaseMachine):
        """Model: accounts set, alias map, owner map (never shrinks), persons."""

        def __init__(self) -> None:
            super().__init__()
            self.accounts: set[str] = set()
            self.owner: dict[tuple[str, str], str] = {}
            self.alias_of: dict[tuple[str, str], str] = {}
            self.person: dict[str, frozenset[str]] = {}

        @rule(network=st.sampled_from(sorted(HANDLES)), data=st.data())
        def add_account(self, network: str, data: st.DataObject) -> None:
            handle = data.draw(st.sampled_from(HANDLES[network]))
            address = f"{network}:{handle}"
            owner = self.owner.get((network, handle))
            if address in self.accounts or (owner is not None and owner != address):
                with pytest.raises(AccountError):
                    self.run(self.store.accounts.create(network, handle, "pw"))
                return
            self.run(self.store.accounts.create(network, handle, "pw"))
            self.accounts.add(address)
            self.owner[(network, handle)] = address

        @precondition(lambda self: self.accounts)
        @rule(data=st.data())
        def delete_account(self, data: st.DataObject) -> None:
            address = data.draw(st.sampled_from(sorted(self.accounts)))
            self.run(self.store.accounts.delete(address))
            self.accounts.discard(address)

        @precondition(lambda self: self.accounts)
        @rule(data=st.data(), network=st.sampled_from(sorted(HANDLES)))
        def alias(self, data: st.DataObject, network: str) -> None:
            target = network
            address = data.draw(st.sampled_from(sorted(self.accounts)))
            if address.startswith(target + ":"):
                return
            alias = self.run(self.store.identity.alias(address, target))
            expected = self.alias_of.get((address, target))
            if expected is not None:
                assert alias == expected, "an alias is stable"
            else:
                assert (target, alias) not in self.owner, "a new alias was never used before"
                self.alias_of[(address, target)] = alias
                self.owner[(target, alias)] = address

        @precondition(lambda self: len(self.accounts) >= 2)
        @rule(data=st.data())
        def link(self, data: st.DataObject) -> None:
            pair = data.draw(
                st.lists(
                    st.sampled_from(sorted(self.accounts)), min_size=2, max_size=3, unique=True
                )
            )
            self.run(self.store.identity.link(pair))
            merged = set(pair)
            for a in pair:
                merged |= self.person.get(a, frozenset())
            group = frozenset(merged)
            for a in group:
                self.person[a] = group

        @precondition(lambda self: self.person)
        @rule(data=st.data())
        def unlink(self, data: st.DataObject) -> None:
            address = data.draw(st.sampled_from(sorted(self.person)))
            self.run(self.store.identity.unlink(address))
            rest = frozenset(self.person.pop(address) - {address})
            for a in rest:
                if len(rest) >= 2:
                    self.person[a] = rest
                else:
                    self.person.pop(a, None)

        @invariant()
        def redis_matches_model(self) -> None:
            for network in HANDLES:
                listed = {a.address for a in self.run(self.store.accounts.list_all(network))}
                assert listed == {a for a in self.accounts if a.startswith(network + ":")}
            for (network, native), address in self.owner.items():
                assert self.run(self.store.identity.owner(f"{network}:{native}")) == address
            for address in ADDRESSES:
                expected = sorted(self.person.get(address, {address}))
                assert self.run(self.store.identity.linked(address)) == expected

    StoreMachine.redis_url = redis_url
    StoreMachine.key = KEY
    return StoreMachine


def test_store_matches_model(store_machine: type[RuleBasedStateMachine]) -> None:
    """Random sequences of account, alias and link operations agree with the dict model."""
    state_test = store_machine.TestCase
    state_test.settings = settings(
        max_examples=25,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    state_test().runTest()
