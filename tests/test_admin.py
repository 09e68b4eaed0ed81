"""The admin HTTP API and CLI on a real gateway process and Redis."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
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


def test_api_token_guessing_is_braked_per_address(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """Past 10 wrong tokens at once an address gets 429 (even with the right token)
    until its bucket refills; a guesser cannot try thousands a second."""
    node = gateway_node([])
    answers = [node.api("GET", "/v1/status", token=f"guess-{i}")[0] for i in range(12)]
    assert answers[:10] == [401] * 10 and answers[10:] == [429, 429]
    assert node.api("GET", "/v1/status")[0] == 429
    time.sleep(1.2)
    assert node.api("GET", "/v1/status")[0] == 200


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


ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _embedded_node_without_token(workdir: Path, node_id: str) -> GatewayNode:
    """A node on its own embedded Redis whose admin token is generated, not configured."""
    node = GatewayNode(workdir, "", [], node_id=node_id)
    text = node.config_path.read_text(encoding="utf-8")
    node.config_path.write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith("token =")) + "\n"
    )
    return node


def test_admin_token_rotate_on_a_running_gateway(tmp_path: Path) -> None:
    """admin-token rotate beside a running gateway (its embedded Redis): the new token is
    printed once and works at once, the old one is refused at once, the audit says so
    without the token."""
    node = _embedded_node_without_token(tmp_path, "rot")
    node.start()
    try:
        shown = re.search(r"admin API token \(shown once, store it now\): (\S+)", node.log())
        assert shown is not None
        first = shown.group(1)
        assert node.api("GET", "/v1/status", token=first)[0] == 200
        rotated = _cli(node.config_path, "admin-token", "rotate")
        assert rotated.returncode == 0, rotated.stderr
        [fresh] = rotated.stdout.split()
        assert fresh != first and "old one no longer works" in rotated.stderr
        assert node.api("GET", "/v1/status", token=first)[0] == 401
        status, audit = node.api("GET", "/v1/audit", token=fresh)
        assert status == 200 and audit[0]["action"] == "admin-token.rotate"
        assert fresh not in json.dumps(audit) and fresh not in node.log()
        assert (node.data_dir / "redis.url").exists()
    finally:
        assert node.stop() == 0


def test_admin_token_rotate_with_no_gateway_running(tmp_path: Path) -> None:
    """admin-token rotate with nothing running (an embedded Redis just for the command):
    the gateway started later keeps that token and shows no new one."""
    node = _embedded_node_without_token(tmp_path, "cold")
    rotated = _cli(node.config_path, "admin-token", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    [fresh] = rotated.stdout.split()
    node.start()
    try:
        assert "admin API token" not in node.log()
        assert node.api("GET", "/v1/status", token=fresh)[0] == 200
        assert node.api("GET", "/v1/status", token="not-it")[0] == 401
    finally:
        assert node.stop() == 0


def test_status_and_audit_times_are_iso_8601_utc(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """status (time, each node's start) and audit (each entry) give ISO 8601 UTC times,
    in the API's JSON and the CLI's alike."""
    node = gateway_node(["jsonline"])
    node.add_account("jsonline", "dora", "pw")
    api_status = node.api("GET", "/v1/status")[1]
    cli_status = json.loads(_cli(node.config_path, "status").stdout)
    for status in (api_status, cli_status):
        assert ISO_UTC.match(status["time"]), status["time"]
        assert ISO_UTC.match(status["nodes"][0]["started"]), status["nodes"][0]
    api_audit = node.api("GET", "/v1/audit")[1]
    cli_audit = json.loads(_cli(node.config_path, "audit").stdout)
    for audit in (api_audit, cli_audit):
        assert audit[0]["action"] == "account.add"
        assert ISO_UTC.match(audit[0]["time"]), audit[0]
    doc = node.api("GET", "/openapi.json", token="")[1]
    answer = doc["paths"]["/v1/audit"]["get"]["responses"]["200"]["content"]["application/json"]
    assert answer["schema"]["items"]["properties"]["time"]["format"] == "date-time"
