"""The admin HTTP API and CLI on a real gateway process and Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.support.jsonline_client import JsonLineClient
from tests.support.node import REPO, GatewayNode


def test_api_requires_the_bearer_token(gateway_node: Callable[..., GatewayNode]) -> None:
    """Without the right token every endpoint answers 401; the OpenAPI doc is public."""
    node = gateway_node([])
    assert node.api("GET", "/v1/status", token="wrong")[0] == 401
    assert node.api("GET", "/v1/status", token="")[0] == 401
    status, doc = node.api("GET", "/openapi.json", token="")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert "/v1/whois/{address}" in doc["paths"]


def test_api_account_lifecycle_and_whois(gateway_node: Callable[..., GatewayNode]) -> None:
    """Create, link, look up, disable, re-enable and delete through the API; audited."""
    node = gateway_node([])
    node.add_account("oscar", "12345", "pw1", "Alice")
    node.add_account("msn", "alice@example.com", "pw2")
    assert (
        node.api("POST", "/v1/accounts", {"network": "oscar", "handle": "12345", "password": "x"})[
            0
        ]
        == 409
    )
    bad = node.api("POST", "/v1/accounts", {"network": "msn", "handle": "nope", "password": "x"})
    assert bad[0] == 400 and "not an MSN handle" in bad[1]["error"]
    assert node.api("POST", "/v1/accounts", {"network": "irc"})[0] == 400
    assert node.link("oscar:12345", "msn:alice@example.com")["addresses"] == [
        "msn:alice@example.com",
        "oscar:12345",
    ]
    who = node.whois("msn:Alice@Example.com")
    assert who["person"] is not None and who["linked"] == ["msn:alice@example.com", "oscar:12345"]
    assert node.api("POST", "/v1/account/oscar%3A12345/disable")[0] == 200
    assert node.whois("oscar:12345")["account"]["disabled"] is True
    assert node.api("PUT", "/v1/account/oscar%3A12345/password", {"password": "new"})[0] == 200
    assert node.api("DELETE", "/v1/account/oscar%3A12345")[0] == 200
    assert node.api("GET", "/v1/whois/oscar%3A99")[0] == 404
    actions = [e["action"] for e in node.api("GET", "/v1/audit")[1]]
    assert actions[:4] == ["account.delete", "account.passwd", "account.disable", "link"]
    assert "pw1" not in json.dumps(node.api("GET", "/v1/audit")[1])


def test_api_rejects_garbage_bodies(gateway_node: Callable[..., GatewayNode]) -> None:
    """A non-JSON or wrongly typed body gets 400 with a message, and the node lives on."""
    node = gateway_node([])
    assert node.api("POST", "/v1/links", {"addresses": "oscar:1"})[0] == 400
    assert node.api("POST", "/v1/links", {"addresses": ["oscar:1"]})[0] == 400
    assert node.api("GET", "/v1/nothing")[0] == 404
    assert node.api("GET", "/v1/status")[0] == 200


def _cli(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        timeout=60,
        cwd=str(config.parent),
    )


def test_cli_against_a_running_gateway(gateway_node: Callable[..., GatewayNode]) -> None:
    """CLI account/link/whois/status work and show in the node; errors exit non-zero
    with a one-line message and no traceback."""
    node = gateway_node(["jsonline"])
    cfg = node.config_path
    added = _cli(cfg, "account", "add", "jsonline", "carol", "--password-stdin", stdin="pw-c\n")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["address"] == "jsonline:carol"
    dup = _cli(cfg, "account", "add", "jsonline", "carol", "--password", "x")
    assert dup.returncode == 1 and dup.stderr.startswith("error:") and "Traceback" not in dup.stderr
    client = JsonLineClient(node.port("jsonline"))
    client.login("jsonline:carol", "pw-c")
    status = json.loads(_cli(cfg, "status").stdout)
    assert status["nodes"][0]["sessions"] == 1 and status["nodes"][0]["alive"]
    whois = json.loads(_cli(cfg, "whois", "jsonline:carol", "--allocate").stdout)
    assert whois["online"][0]["node"] == node.node_id
    assert set(whois["aliases"]) == {"oscar", "msn", "uin"}
    assert _cli(cfg, "unlink", "jsonline:carol").returncode == 1
    assert _cli(cfg, "whois", "bogus").returncode == 1
    client.close()


def test_cli_bad_config_exit_code(tmp_path: Path) -> None:
    """An invalid config file exits 2 with the offending key named."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[admin]\nport = 'eighty'\n")
    result = _cli(cfg, "status")
    assert result.returncode == 2 and "admin.port" in result.stderr
