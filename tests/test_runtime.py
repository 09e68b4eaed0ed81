"""The runtime: config loading, and a process that stops cleanly on SIGTERM."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config
from tests.support.jsonline_client import JsonLineClient
from tests.support.node import GatewayNode

REPO = Path(__file__).resolve().parents[1]


def test_example_config_validates() -> None:
    """deploy/gateway.example.toml is a valid config with the documented defaults."""
    config = load_config(REPO / "deploy" / "gateway.example.toml", environ={})
    assert config.admin.host == "127.0.0.1"
    assert config.adapters["oscar"]["port"] == 5190
    assert config.adapters["msn"]["port"] == 1863
    assert config.adapters["uin"]["port"] == 4000


def test_environment_overrides_file(tmp_path: Path) -> None:
    """GATEWAY_SECTION__KEY overrides the file, with TOML-typed values."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("[redis]\nurl = 'redis://file:6379/0'\n")
    config = load_config(
        cfg,
        environ={"GATEWAY_REDIS__URL": "redis://env:1/0", "GATEWAY_ADAPTERS__OSCAR__PORT": "5191"},
    )
    assert config.redis.url == "redis://env:1/0"
    assert config.adapters["oscar"]["port"] == 5191


@pytest.mark.parametrize(
    "text", ["[node\n", "[admin]\nport = 70000\n", "[nonsense]\nx = 1\n", "[redis]\nurl = 5\n"]
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str) -> None:
    """Broken TOML, out-of-range or unknown keys raise ConfigError naming the problem."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError):
        load_config(cfg, environ={})


def test_sigterm_stops_cleanly_and_leaves_the_directory(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """SIGTERM: the node (with a real adapter too) closes its sessions, leaves the
    registry and exits 0 without a traceback."""
    node = gateway_node(["jsonline", "msn"])
    other = gateway_node(["jsonline"])
    node.add_account("jsonline", "erin", "p")
    client = JsonLineClient(node.port("jsonline"))
    client.login("jsonline:erin", "p")
    assert node.stop() == 0
    assert "stopped cleanly" in node.log()
    assert "Traceback" not in node.log()
    assert other.api("GET", "/v1/sessions")[1] == []
    nodes = [n["node"] for n in other.api("GET", "/v1/status")[1]["nodes"]]
    assert node.node_id not in nodes
    client.close()


def test_example_msn_table_is_valid_and_serves_https() -> None:
    """Every key of the example's [adapters.msn] is a valid MSN setting; HTTPS is on."""
    from adapters.msn.adapter import MsnSettings

    config = load_config(REPO / "deploy" / "gateway.example.toml", environ={})
    settings = MsnSettings.model_validate(config.enabled_adapters()["msn"])
    assert settings.http_tls and settings.tls_cert is None
