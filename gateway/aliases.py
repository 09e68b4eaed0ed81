"""Alias policy (pure): how a user of one network is spelled in another.

Every address reached from another network gets one alias per target network, in the
target's own namespace, allocated once (atomically, in Redis) and never reused:

- ``uin`` and ``oscar``: a number above ``alias_numeric_base``. ICQ clients only add
  numbers, and AIM 5-era clients accept ICQ numbers too, so one numeric alias serves
  both kinds of OSCAR client (docs/adr/0004-aliases.md).
- ``msn``: an e-mail-like handle ``<native>.<network>@<alias_domain>``, readable and
  showing where the contact lives; when that is taken or unusable, ``u<n>.<network>@...``.
- any other network: ``<network-initial><n>`` style numbers, like the numeric ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NUMERIC_NETWORKS = frozenset({"uin", "oscar"})
UINT32_MAX = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class AliasPlan:
    candidates: tuple[str, ...]
    prefix: str
    suffix: str
    base: int
    maximum: int


def plan_alias(address: str, target_network: str, numeric_base: int, domain: str) -> AliasPlan:
    source_network, _, native = address.partition(":")
    if target_network in NUMERIC_NETWORKS:
        return AliasPlan((), "", "", numeric_base, UINT32_MAX)
    if target_network == "msn":
        local = re.sub(r"[^a-z0-9._-]", ".", native.lower()).strip(".")
        local = re.sub(r"\.{2,}", ".", local)[:40]
        suffix = f".{source_network}@{domain}"
        candidates = (f"{local}{suffix}",) if local else ()
        return AliasPlan(candidates, "u", suffix, 0, 10**12)
    return AliasPlan((), "", "", numeric_base, UINT32_MAX)


_NETWORK_LABELS = {"oscar": "ICQ/AIM", "msn": "MSN", "uin": "UIN"}


def network_label(network: str) -> str:
    return _NETWORK_LABELS.get(network, network.upper())


def display_with_network(display_name: str, address: str) -> str:
    """A display name that names the contact's network: ``Bob [MSN]``."""
    network, _, native = address.partition(":")
    return f"{display_name or native} [{network_label(network)}]"
