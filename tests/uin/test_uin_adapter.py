"""The adapter: settings validation, the UDP listener, stop."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError
from twisted.internet.testing import MemoryReactorClock

from adapters.contract import Adapter
from adapters.uin.adapter import UinAdapter, UinSettings
from tests.support.fake_core import FakeCore


def test_defaults_are_port_4000_on_all_interfaces() -> None:
    """Without settings the adapter listens on 0.0.0.0:4000/udp."""
    settings = UinSettings()
    assert (settings.host, settings.port) == ("0.0.0.0", 4000)


def test_unknown_or_invalid_settings_are_refused() -> None:
    """A typo in [adapters.uin] or an impossible port fails loudly."""
    with pytest.raises(ValidationError):
        UinSettings.model_validate({"prot": 4000})
    with pytest.raises(ValidationError):
        UinSettings.model_validate({"port": 70000})


class _FakeUdpPort:
    def __init__(self) -> None:
        self.stopped = False

    def getHost(self) -> object:
        return ("127.0.0.1", 4321)

    def stopListening(self) -> None:
        self.stopped = True


class UdpMemoryReactor(MemoryReactorClock):
    """MemoryReactorClock has no listenUDP; record the call the way it records TCP."""

    def __init__(self) -> None:
        super().__init__()
        self.udp: list[tuple[int, object, str]] = []
        self.port = _FakeUdpPort()

    def listenUDP(
        self,
        port: int,
        protocol: object,
        interface: str = "",
        maxPacketSize: int = 8192,
    ) -> _FakeUdpPort:
        self.udp.append((port, protocol, interface))
        return self.port


def test_start_listens_on_udp_and_stop_says_goodbye() -> None:
    """start() opens one UDP listener with the configured port; stop() shuts down."""
    adapter = UinAdapter()
    typed: Adapter = adapter  # the contract, checked by mypy
    assert typed.network == "uin"
    reactor = UdpMemoryReactor()
    listeners = asyncio.run(adapter.start(FakeCore(), reactor, {"port": 0, "host": "127.0.0.1"}))  # type: ignore[arg-type]
    assert len(listeners) == 1 and "udp" in listeners[0].description
    ((port, protocol, interface),) = reactor.udp
    assert (port, interface) == (0, "127.0.0.1")
    assert protocol is adapter.server
    asyncio.run(adapter.stop())
    assert reactor.port.stopped
