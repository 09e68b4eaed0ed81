"""What can be checked of deploy/ here: the unit file, the compose file, the image."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

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
