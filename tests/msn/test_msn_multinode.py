"""End to end on two gateway processes sharing one Redis: MSN settings the core does not
model (groups, GTC) are adapter data in Redis, so every node lists the same."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.msn.msn_client import login
from tests.support.node import GatewayNode

pytestmark = pytest.mark.slow

MSN = {"factory": "adapters.msn.adapter:MsnAdapter", "switchboard_port": 0, "http_port": 0}


def test_group_made_on_one_node_is_listed_by_syn_on_another(
    gateway_node: Callable[..., GatewayNode], tmp_path: Path
) -> None:
    """Alice adds a group and sets GTC N on node A; logged in on node B, her SYN lists
    both, and a contact can be put into that group there."""
    key = tmp_path / "cluster.key"  # one secret key for the cluster (sealed passwords)
    a = gateway_node(["msn"], adapter_settings={"msn": MSN}, secret_key_file=key)
    b = gateway_node(["msn"], adapter_settings={"msn": MSN}, secret_key_file=key)
    a.add_account("msn", "alice@example.com", "secret", "Alice")
    a.add_account("msn", "bob@example.com", "secret", "Bob")

    on_a = login(a.port("msn", 0), a.port("msn", 2), "alice@example.com", "secret", version=12)
    trid = on_a.send("ADG", "Friends")
    guid = on_a.expect("ADG", trid).args[1]
    trid = on_a.send("GTC", "N")
    on_a.expect("GTC", trid)
    trid = on_a.send("SYN", "0", "0")  # list work runs in order: both are stored by now
    on_a.expect("SYN", trid)
    on_a.close()

    on_b = login(b.port("msn", 0), b.port("msn", 2), "alice@example.com", "secret", version=12)
    trid = on_b.send("SYN", "0", "0")
    assert on_b.expect("SYN", trid).args[-1] == "1"  # one group besides the default
    assert on_b.expect("GTC").args == ("N",)
    assert on_b.expect("LSG").args == ("Friends", guid)
    trid = on_b.send("ADC", "FL", "N=bob@example.com", "F=Bob")
    contact = next(arg for arg in on_b.expect("ADC", trid).args if arg.startswith("C="))
    trid = on_b.send("ADC", "FL", contact, guid)
    assert on_b.expect("ADC", trid).args == ("FL", contact, guid)
    on_b.close()
