"""What can be checked of deploy/ here: the unit file, the compose file, the image, the
example config against the settings models, and the ports in all of them and the README."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from gateway.config import DEFAULT_ADAPTERS, Config, load_config
from tests.support.ports import SETTINGS_MODELS, UDP, default_ports

REPO = Path(__file__).resolve().parents[1]


def test_systemd_unit_has_what_it_needs() -> None:
    """The unit runs the gateway, stops it with SIGTERM and restarts on failure."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(REPO / "deploy" / "imgateway.service")
    service = unit["Service"]
    assert "-m gateway" in service["ExecStart"] and service["ExecStart"].endswith(" run")
    assert service["KillSignal"] == "SIGTERM"
    assert service["Restart"] == "on-failure"
    assert service["User"] and unit["Install"]["WantedBy"] == "multi-user.target"
    assert unit["Unit"]["Description"]


def test_compose_runs_redis_with_aof_and_points_the_gateway_at_it() -> None:
    """Compose: Redis with appendonly yes; the gateway's redis.url names that service."""
    text = (REPO / "deploy" / "compose.yaml").read_text()
    assert re.search(r'"--appendonly",\s*"yes"', text)
    assert "GATEWAY_REDIS__URL: redis://redis:6379/0" in text
    assert "4000:4000/udp" in text


def test_container_image_runs_the_cli() -> None:
    """The Containerfile installs the package and runs python -m gateway run."""
    text = (REPO / "deploy" / "Containerfile").read_text()
    assert "FROM python:3.11" in text and "pip install" in text
    assert '"-m", "gateway"' in text and 'CMD ["run"]' in text


# ---- the example config lists every key; every default port is published and documented

EXAMPLE = REPO / "deploy" / "gateway.example.toml"
HEADER = re.compile(r"^#?\s*\[([A-Za-z0-9_.]+)\]\s*$")
KEY = re.compile(r"^(#\s?)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*\S")


def example_keys(path: Path = EXAMPLE) -> dict[str, bool]:
    """``section.key`` -> True when set, False when shown commented out."""
    keys: dict[str, bool] = {}
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if header := HEADER.match(line):
            section = header[1]
        elif key := KEY.match(line):
            keys[f"{section}.{key[2]}"] = key[1] is None
    return keys


def model_keys() -> set[str]:
    """Every key the config models accept: the core's sections (and the default keys of
    their tables, such as bot.ids), and each adapter's settings model plus ``enabled``."""
    keys: set[str] = set()
    defaults = Config().model_dump()
    for section, field in Config.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        for key in model.model_fields:
            value = defaults[section][key]
            if isinstance(value, dict):
                keys |= {f"{section}.{key}.{inner}" for inner in value}
            else:
                keys.add(f"{section}.{key}")
    for network, settings in SETTINGS_MODELS.items():
        keys |= {f"adapters.{network}.{key}" for key in ["enabled", *settings.model_fields]}
    return keys


def test_the_example_config_lists_every_key() -> None:
    """Each key of gateway/config.py's sections and of every adapter's settings model is
    in deploy/gateway.example.toml, set to its default or commented out."""
    listed = example_keys()
    missing = sorted(model_keys() - set(listed))
    assert missing == [], f"deploy/gateway.example.toml lacks {missing}"
    assert any(k.startswith("adapters.") and k.endswith(".factory") for k in listed)


def test_the_example_config_shows_the_defaults() -> None:
    """A key set in the example has its default: the file documents, it changes nothing."""
    config = load_config(EXAMPLE, environ={})
    assert config.model_dump(exclude={"adapters"}) == Config().model_dump(exclude={"adapters"})
    for network, settings in SETTINGS_MODELS.items():
        table = dict(config.adapters[network])
        assert table.pop("enabled") == DEFAULT_ADAPTERS[network]["enabled"]
        assert settings.model_validate(table) == settings(), network


def test_an_example_missing_a_key_is_caught(tmp_path: Path) -> None:
    """The key check fails when a key (here MSN's switchboard_port) is not listed."""
    trimmed = tmp_path / "example.toml"
    text = EXAMPLE.read_text(encoding="utf-8").replace("switchboard_port = 1864\n", "")
    trimmed.write_text(text, encoding="utf-8")
    assert "adapters.msn.switchboard_port" in model_keys() - set(example_keys(trimmed))


def _published(port: int, proto: str) -> re.Pattern[str]:
    return re.compile(rf'"(?:[0-9.]+:)?{port}:{port}/{proto}"')


@pytest.mark.parametrize(
    ("key", "port"), sorted((k, p) for k, p in default_ports().items() if p), ids=str
)
def test_every_default_port_is_published_and_documented(key: tuple[str, str], port: int) -> None:
    """Each port the gateway binds by default is published by compose, exposed by the
    Containerfile and listed in the README, with its protocol."""
    proto = "udp" if key in UDP else "tcp"
    compose = (REPO / "deploy" / "compose.yaml").read_text(encoding="utf-8")
    assert _published(port, proto).search(compose), f"compose does not publish {port}/{proto}"
    image = (REPO / "deploy" / "Containerfile").read_text(encoding="utf-8")
    exposed = " ".join(line for line in image.splitlines() if line.startswith("EXPOSE "))
    assert f"{port}/{proto}" in exposed.split(), f"Containerfile does not expose {port}/{proto}"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"`{port}/{proto}`" in readme, f"README does not list {port}/{proto}"


def test_compose_opens_what_a_container_binds_on_loopback() -> None:
    """In the container the admin API and MSN's login endpoint bind 0.0.0.0 (their
    defaults are loopback); admin is published on the host's loopback only, and MSN
    clients are sent to the public host, not to 0.0.0.0."""
    compose = (REPO / "deploy" / "compose.yaml").read_text(encoding="utf-8")
    assert "GATEWAY_ADMIN__HOST: 0.0.0.0" in compose
    assert '"127.0.0.1:8880:8880/tcp"' in compose
    assert "GATEWAY_ADAPTERS__MSN__HTTP_HOST: 0.0.0.0" in compose
    assert "GATEWAY_ADAPTERS__MSN__PUBLIC_HOST:" in compose
    assert "GATEWAY_ADAPTERS__MSN__HTTP_PUBLIC:" in compose
