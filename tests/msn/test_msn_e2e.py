"""End to end: real gateway process, real Redis, real sockets, our own MSN client."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.msn.msn_client import answer_ring, login, open_switchboard, text
from tests.support.node import GatewayNode

pytestmark = pytest.mark.slow

MSN = {"factory": "adapters.msn.adapter:MsnAdapter", "switchboard_port": 0, "http_port": 0}


def start(gateway_node: Callable[..., GatewayNode]) -> tuple[GatewayNode, int, int]:
    node = gateway_node(["msn"], adapter_settings={"msn": MSN})
    for handle, name in (("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")):
        node.add_account("msn", f"{handle}@example.com", "secret", name)
    return node, node.port("msn", 0), node.port("msn", 2)


def befriend(ns_a: object, ns_b: object, a: str, b: str) -> None:
    for ns, other in ((ns_a, b), (ns_b, a)):
        trid = ns.send("ADD", "FL", other, other, "0")  # type: ignore[attr-defined]
        ns.expect("ADD", trid)  # type: ignore[attr-defined]
        trid = ns.send("ADD", "AL", other, other)  # type: ignore[attr-defined]
        ns.expect("ADD", trid)  # type: ignore[attr-defined]


def test_two_msn_users_chat(gateway_node: Callable[..., GatewayNode]) -> None:
    """Alice (MSNP8, TWN) and Bob (MSNP8) chat over real switchboards through the gateway."""
    _, ns_port, http_port = start(gateway_node)
    alice = login(ns_port, http_port, "alice@example.com", "secret")
    bob = login(ns_port, http_port, "bob@example.com", "secret")
    befriend(alice, bob, "alice@example.com", "bob@example.com")
    sb_a = open_switchboard(alice, "alice@example.com")
    trid = sb_a.send("CAL", "bob@example.com")
    sb_a.take("CAL", trid)
    trid = sb_a.send("MSG", "A", payload=text("hello bob"))  # waits for Bob's answer
    sb_b = answer_ring(bob, "bob@example.com")
    sb_a.take("JOI")  # Bob joins when he answers, as on a real server
    sb_a.take("ACK", trid)
    msg = sb_b.expect("MSG")
    assert msg.args[0] == "alice@example.com" and msg.payload is not None
    assert msg.payload.endswith(b"hello bob")
    sb_b.send("MSG", "N", payload=text("hi alice"))
    back = sb_a.expect("MSG")
    assert back.payload is not None and back.payload.endswith(b"hi alice")


def test_msnp8_client_with_msnp12_client(gateway_node: Callable[..., GatewayNode]) -> None:
    """An MSNP12 client (MSNP11 challenge hash) and an MSNP7 MD5 client reach each other."""
    _, ns_port, http_port = start(gateway_node)
    old = login(ns_port, http_port, "alice@example.com", "secret", version=7)
    new = login(ns_port, http_port, "bob@example.com", "secret", version=12)
    for args in (("FL", "bob@example.com", "Bob", "0"), ("AL", "bob@example.com", "Bob")):
        trid = old.send("ADD", *args)
        old.expect("ADD", trid)
    for args in (("FL", "N=alice@example.com", "F=Alice"), ("AL", "N=alice@example.com")):
        trid = new.send("ADC", *args)
        new.expect("ADC", trid)
    sb_new = open_switchboard(new, "bob@example.com")
    sb_new.send("CAL", "alice@example.com")
    sb_new.send("MSG", "N", payload=text("from msnp12"))
    sb_old = answer_ring(old, "alice@example.com")
    sb_new.take("JOI")
    assert sb_old.expect("MSG").payload.endswith(b"from msnp12")  # type: ignore[union-attr]


def test_three_party_switchboard(gateway_node: Callable[..., GatewayNode]) -> None:
    """Alice calls Bob and Carol into one switchboard; everybody hears everybody."""
    _, ns_port, http_port = start(gateway_node)
    alice, bob, carol = (
        login(ns_port, http_port, f"{h}@example.com", "secret") for h in ("alice", "bob", "carol")
    )
    befriend(alice, bob, "alice@example.com", "bob@example.com")
    befriend(alice, carol, "alice@example.com", "carol@example.com")
    sb_a = open_switchboard(alice, "alice@example.com")
    for who in ("bob@example.com", "carol@example.com"):
        trid = sb_a.send("CAL", who)
        sb_a.expect("CAL", trid)
    sb_a.send("MSG", "N", payload=text("hello both"))
    sb_b = answer_ring(bob, "bob@example.com")
    sb_c = answer_ring(carol, "carol@example.com")
    assert sb_b.expect("MSG").payload.endswith(b"hello both")  # type: ignore[union-attr]
    assert sb_c.expect("MSG").payload.endswith(b"hello both")  # type: ignore[union-attr]
    sb_b.send("MSG", "N", payload=text("bob here"))
    for sb in (sb_a, sb_c):
        msg = sb.expect("MSG")
        assert msg.args[0] == "bob@example.com" and msg.payload.endswith(b"bob here")  # type: ignore[union-attr]


TSHARK = shutil.which("tshark")


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_tshark_msnms_dissects_gateway_traffic(
    gateway_node: Callable[..., GatewayNode], tmp_path: Path
) -> None:
    """Wireshark's msnms dissector reads a captured gateway session with no malformed packet."""
    _, ns_port, http_port = start(gateway_node)
    capture = tmp_path / "msn.pcapng"
    tshark = subprocess.Popen(
        [str(TSHARK), "-i", "lo", "-w", str(capture), "-f", f"tcp port {ns_port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        ready = threading.Event()

        def wait_ready() -> None:
            assert tshark.stderr is not None
            for line in iter(tshark.stderr.readline, b""):
                if b"Capturing" in line:
                    ready.set()
                    return

        threading.Thread(target=wait_ready, daemon=True).start()
        if not ready.wait(15):
            pytest.skip("tshark cannot capture on the loopback interface here")
        time.sleep(0.5)
        alice = login(ns_port, http_port, "alice@example.com", "secret")
        trid = alice.send("SYN", "0")
        alice.expect("SYN", trid)
        alice.send("PNG")
        alice.expect("QNG")
        alice.close()
        time.sleep(1.0)
    finally:
        tshark.terminate()
        tshark.wait(10)
    port_map = ["-d", f"tcp.port=={ns_port},msnms"]
    malformed = subprocess.run(
        [str(TSHARK), "-r", str(capture), *port_map, "-Y", "_ws.malformed"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert malformed.stdout.strip() == ""
    dissected = subprocess.run(
        [str(TSHARK), "-r", str(capture), *port_map, "-Y", "msnms", "-O", "msnms"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    shown = dissected.stdout
    assert "MSN Messenger Service" in shown
    for line in ("USR 3 OK alice@example.com Alice 1 0", "CHL 0 ", "QRY 5\\r\\n", "SYN 6 "):
        assert line in shown, shown[:3000]
    assert os.path.getsize(capture) > 0


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "login.passport.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_passport_login_over_https(
    gateway_node: Callable[..., GatewayNode], tmp_path: Path
) -> None:
    """With a configured certificate the nexus and login endpoints speak HTTPS."""
    import http.client
    import ssl

    cert, key = _self_signed(tmp_path)
    settings = {**MSN, "tls_cert": str(cert), "tls_key": str(key)}
    node = gateway_node(["msn"], adapter_settings={"msn": settings})
    node.add_account("msn", "alice@example.com", "secret", "Alice")
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    conn = http.client.HTTPSConnection(
        "127.0.0.1", node.port("msn", 2), context=context, timeout=10
    )
    conn.request("GET", "/rdr/pprdr.asp")
    response = conn.getresponse()
    response.read()
    assert "DALogin=" in (response.getheader("PassportURLs") or "")
    conn.request(
        "GET",
        "/login2.srf",
        headers={"Authorization": "Passport1.4 OrgVerb=GET,sign-in=alice%40example.com,pwd=secret"},
    )
    answer = conn.getresponse()
    answer.read()
    assert "da-status=success" in (answer.getheader("Authentication-Info") or "")
    assert "secret" not in node.log()
