"""Tests never use fixed ports: every gateway a test starts binds port 0 for every
listener, so ``./dev test`` runs while ``./dev run`` (or another test run) is up."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.registry import installed_adapters
from gateway.config import load_config
from tests.support.node import GatewayNode, NodeError
from tests.support.ports import SETTINGS_MODELS, UDP, bound_ports, default_ports

ALL_NETWORKS = ["oscar", "msn", "uin", "jsonline"]


def test_every_installed_adapter_has_its_settings_model_here() -> None:
    """tests/support/ports.py knows the settings model of every installed adapter."""
    assert set(installed_adapters()) <= set(SETTINGS_MODELS)


def test_default_ports_are_the_documented_ones() -> None:
    """The models' defaults: admin 8880, OSCAR 5190, MSN 1863/1864/8443, UIN 4000/udp."""
    ports = default_ports()
    assert ports[("admin", "port")] == 8880
    assert ports[("adapters.oscar", "port")] == 5190
    assert ports[("adapters.msn", "port")] == 1863
    assert ports[("adapters.msn", "switchboard_port")] == 1864
    assert ports[("adapters.msn", "http_port")] == 8443
    assert ports[("adapters.uin", "port")] == 4000
    assert ("adapters.uin", "port") in UDP


def test_a_test_gateway_config_binds_port_zero_everywhere(tmp_path: Path) -> None:
    """The config GatewayNode writes has 0 in every port key of every enabled section,
    MSN's switchboard and Passport HTTP ports included."""
    node = GatewayNode(tmp_path, "redis://127.0.0.1:1/0", ALL_NETWORKS)
    ports = bound_ports(load_config(node.config_path, environ={}))
    assert ("adapters.msn", "switchboard_port") in ports
    assert ("adapters.msn", "http_port") in ports
    assert ports and set(ports.values()) == {0}


def test_a_test_asking_for_a_fixed_port_is_refused(tmp_path: Path) -> None:
    """GatewayNode refuses a config with a fixed port, naming the key."""
    with pytest.raises(NodeError, match="switchboard_port"):
        GatewayNode(
            tmp_path,
            "redis://127.0.0.1:1/0",
            ["msn"],
            adapter_settings={"msn": {"switchboard_port": 1864}},
        )


@contextlib.contextmanager
def _default_ports_taken() -> Iterator[None]:
    """Hold every default port (if this run can bind it; else someone else holds it)."""
    held: list[socket.socket] = []
    try:
        for key, port in default_ports().items():
            if port == 0:
                continue
            kind = socket.SOCK_DGRAM if key in UDP else socket.SOCK_STREAM
            sock = socket.socket(socket.AF_INET, kind)
            try:
                sock.bind(("0.0.0.0", port))
                if kind == socket.SOCK_STREAM:
                    sock.listen(1)
            except OSError:
                sock.close()  # in use already: taken all the same
                continue
            held.append(sock)
        yield
    finally:
        for sock in held:
            sock.close()


def test_a_test_gateway_starts_while_the_default_ports_are_taken(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """With 5190, 1863, 1864, 8443, 4000/udp and 8880 taken (as by ``./dev run``), a
    gateway with every adapter starts on other ports and stops cleanly."""
    defaults = set(default_ports().values())
    with _default_ports_taken():
        node = gateway_node(ALL_NETWORKS)
    bound = {
        listener["port"]
        for network in [*ALL_NETWORKS, "admin"]
        for listener in node.listeners(network)
    }
    assert len(bound) == 7 and not bound & defaults
    assert node.stop() == 0
