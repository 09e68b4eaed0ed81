"""End to end (issue 13, "bounded everything"): floods against a real gateway process over
real sockets. A client past its command rate is cut off while another user's round trips
keep working; connections over the per-source cap are refused at once; a silent
connection that never logs in is closed on every listener; the gateway's memory comes
back after a flood (docs/adr/0017-rates-and-admission.md)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

import pytest

from adapters.msn.codec import Command, CommandCodec, ErrorReply, Role
from tests.msn.msn_client import MsnClient, login, open_switchboard
from tests.support.node import GatewayNode

pytestmark = pytest.mark.slow

MSN = {"factory": "adapters.msn.adapter:MsnAdapter", "switchboard_port": 0, "http_port": 0}
OSCAR = {"factory": "adapters.oscar.adapter:OscarAdapter"}


def _node(
    gateway_node: Callable[..., GatewayNode], msn: dict[str, object] | None = None
) -> GatewayNode:
    node = gateway_node(["msn"], adapter_settings={"msn": {**MSN, **(msn or {})}})
    node.add_account("msn", "flood@example.com", "pw-flood", "Flood")
    node.add_account("msn", "bob@example.com", "pw-bob", "Bob")
    return node


def _login(node: GatewayNode, email: str, password: str) -> MsnClient:
    return login(node.port("msn", 0), node.port("msn", 2), email, password)


def _round_trip(client: MsnClient) -> float:
    """One PNG -> QNG on ``client``'s notification connection, in seconds."""
    start = time.monotonic()
    client.sock.sendall(b"PNG\r\n")
    client.expect("QNG")
    return time.monotonic() - start


def _read_until_closed(sock: socket.socket, within: float) -> tuple[bytes, bool]:
    """Everything the gateway writes until it closes ``sock``; (data, closed)."""
    sock.settimeout(0.5)
    data = bytearray()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return bytes(data), True
        if not chunk:
            return bytes(data), True
        data += chunk
    return bytes(data), False


def _flood(sock: socket.socket, payload: bytes) -> None:
    """Write ``payload`` until it is all out or the gateway closes the socket."""
    with contextlib.suppress(OSError):
        sock.sendall(payload)


def _flood_while_measuring(
    node: GatewayNode, flooder: MsnClient, payload: bytes
) -> tuple[list[float], bytes, bool]:
    """Flood from ``flooder`` in a thread; meanwhile Bob's PNG round trips."""
    bob = _login(node, "bob@example.com", "pw-bob")
    quiet = [_round_trip(bob) for _ in range(5)]
    writer = threading.Thread(target=_flood, args=(flooder.sock, payload))
    writer.start()
    during = [_round_trip(bob) for _ in range(20)]
    data, closed = _read_until_closed(flooder.sock, 20.0)
    writer.join(30)
    during += [_round_trip(bob) for _ in range(5)]
    bob.close()
    print(
        f"PNG round trip: quiet max {max(quiet) * 1000:.2f} ms, during max {max(during) * 1000:.2f} ms"
    )
    assert max(during) < max(1.0, 20 * max(quiet)), (quiet, during)
    return during, data, closed


def test_a_png_flood_is_cut_off_while_another_user_keeps_answering(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """100,000 PNG from one client: it gets at most its burst of QNG, then OUT and the
    socket closes; Bob's PNG round trips keep working throughout; one log line."""
    node = _node(gateway_node)
    flooder = _login(node, "flood@example.com", "pw-flood")
    _, data, closed = _flood_while_measuring(node, flooder, b"PNG\r\n" * 100_000)
    assert closed, "the flooder was never cut off"
    frames = CommandCodec(Role.CLIENT).receive_data(data)
    verbs = [f.verb for f in frames if isinstance(f, Command)]
    assert verbs.count("QNG") <= 250 and verbs[-1] == "OUT"
    assert node.log().count("more than") == 1


def test_a_chg_flood_gets_800_and_is_cut_off(gateway_node: Callable[..., GatewayNode]) -> None:
    """30,000 CHG: error 800 (changing too rapidly), OUT, closed; Bob unaffected."""
    node = _node(gateway_node)
    flooder = _login(node, "flood@example.com", "pw-flood")
    lines = b"".join(
        b"CHG %d %s 0\r\n" % (n, b"AWY" if n % 2 else b"NLN") for n in range(10, 30_010)
    )
    _, data, closed = _flood_while_measuring(node, flooder, lines)
    assert closed, "the flooder was never cut off"
    frames = CommandCodec(Role.CLIENT).receive_data(data)
    assert [f.code for f in frames if isinstance(f, ErrorReply)] == [800]
    assert isinstance(frames[-1], Command) and frames[-1].verb == "OUT"
    changes = [f for f in frames if isinstance(f, Command) and f.verb == "CHG"]
    assert len(changes) <= 25


def _open_many(port: int, count: int, tls: bool = False) -> tuple[int, list[socket.socket]]:
    """Open ``count`` connections; how many the gateway closed at once, and the rest."""
    kept: list[socket.socket] = []
    for _ in range(count):
        kept.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    time.sleep(1.0)
    refused = 0
    alive = []
    for sock in kept:
        sock.settimeout(0.2)
        try:
            chunk = sock.recv(65536)  # OSCAR's hello for those accepted; EOF when refused
            closed = chunk == b""
        except TimeoutError:
            closed = False
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        if closed:
            refused += 1
            sock.close()
        else:
            alive.append(sock)
    return refused, alive


@pytest.mark.parametrize("listener", ["oscar", "msn-ns", "msn-sb", "msn-http"])
def test_connections_over_the_per_source_cap_are_refused(
    gateway_node: Callable[..., GatewayNode], listener: str
) -> None:
    """100 connections from 127.0.0.1 to one listener, cap 64 (the default): those over it
    are closed at once; Bob, logged in before, keeps answering; one log line."""
    node = gateway_node(["oscar", "msn"], adapter_settings={"oscar": OSCAR, "msn": MSN})
    node.add_account("msn", "bob@example.com", "pw-bob", "Bob")
    bob = _login(node, "bob@example.com", "pw-bob")  # holds one NS connection
    port = {
        "oscar": node.port("oscar"),
        "msn-ns": node.port("msn", 0),
        "msn-sb": node.port("msn", 1),
        "msn-http": node.port("msn", 2),
    }[listener]
    held = 1 if listener == "msn-ns" else 0
    refused, alive = _open_many(port, 100)
    assert refused == 100 - (64 - held)
    _round_trip(bob)
    assert node.log().count("max_connections_per_source") == 1
    for sock in alive:
        sock.close()
    time.sleep(0.5)
    # The places are free again once those connections are gone.
    again, rest = _open_many(port, 10)
    assert again == 0
    for sock in rest:
        sock.close()
    bob.close()


def test_a_silent_connection_is_closed_on_every_listener_before_login(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """Connect and say nothing: OSCAR, the MSN notification server, the switchboard and
    the login endpoint each close the connection after their bound (1 s here)."""
    node = gateway_node(
        ["oscar", "msn"],
        adapter_settings={
            "oscar": {**OSCAR, "login_timeout": 1.0},
            "msn": {**MSN, "login_timeout": 1.0, "http_timeout": 1.0},
        },
    )
    ports = {
        "oscar": node.port("oscar"),
        "msn-ns": node.port("msn", 0),
        "msn-sb": node.port("msn", 1),
        "msn-http": node.port("msn", 2),
    }
    socks = {
        name: socket.create_connection(("127.0.0.1", p), timeout=5) for name, p in ports.items()
    }
    start = time.monotonic()
    for name, sock in socks.items():
        _, closed = _read_until_closed(sock, 10.0)
        assert closed, f"{name} kept a silent connection"
        sock.close()
    assert time.monotonic() - start < 10.0  # (the login endpoint's is a TLS handshake never begun)


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_memory_comes_back_after_a_switchboard_flood(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """A client pours 100,000 MSG into a switchboard (about 15 MB) and is disconnected:
    the gateway's RSS is back within 40 MB of where it was before the flood."""
    node = _node(gateway_node)
    assert node.process is not None
    bob = _login(node, "bob@example.com", "pw-bob")
    flooder = _login(node, "flood@example.com", "pw-flood")
    sb = open_switchboard(flooder, "flood@example.com")
    trid = sb.send("CAL", "bob@example.com")
    sb.expect("CAL", trid)
    time.sleep(1.0)
    before = _rss_kib(node.process.pid)
    payload = b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nflood"
    one = b"MSG 9 U %d\r\n%s" % (len(payload), payload)
    writer = threading.Thread(target=_flood, args=(sb.sock, one * 100_000))
    writer.start()
    _read_until_closed(sb.sock, 30.0)
    writer.join(60)
    sb.close()
    flooder.close()
    deadline = time.monotonic() + 30.0
    after = _rss_kib(node.process.pid)
    while after > before + 40 * 1024 and time.monotonic() < deadline:
        time.sleep(0.5)
        after = _rss_kib(node.process.pid)
    print(f"gateway RSS {before} KiB before the flood, {after} KiB after")
    assert after <= before + 40 * 1024, f"RSS {before} KiB before, {after} KiB after"
    _round_trip(bob)
    bob.close()


def test_uin_floods_from_one_host_cost_another_user_nothing(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """UIN (verification: its per-host buckets existed before issue 13): from 127.0.0.2,
    50,000 datagrams before any login (hellos and garbage) and 30,000 copies of a logged-in
    session's command; a user on 127.0.0.1 keeps getting answers; drops are logged at most
    once a minute."""
    from adapters.uin.codec import ContactList, ContactListGet, Hello, Status
    from tests.uin.raw_client import RawClient

    node = gateway_node(["uin"])
    node.add_account("uin", "700123", "pw-a", "A")
    node.add_account("uin", "700456", "pw-b", "B")
    port = node.port("uin")
    user = RawClient(port, 700123, "pw-a").login()

    def round_trip() -> float:
        before = len(user.commands(ContactList))
        start = time.monotonic()
        user.send(ContactListGet())
        assert user.pump(lambda: len(user.commands(ContactList)) > before, 10.0)
        return time.monotonic() - start

    quiet = [round_trip() for _ in range(5)]
    flooder = RawClient(port, 700456, "pw-b")
    flooder.sock.close()
    flooder.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flooder.sock.bind(("127.0.0.2", 0))
    flooder.login()
    assert flooder.session.send(ContactListGet())
    (command,) = flooder.session.datagrams_to_send(time.monotonic())
    from adapters.uin.codec import NONCE_SIZE, Datagram, encode

    hello = encode(Datagram(Hello(0, Status.ONLINE, bytes(NONCE_SIZE)), 0, 700456))

    def flood() -> None:
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raw.bind(("127.0.0.2", 0))
        for i in range(50_000):
            raw.sendto(hello if i % 2 else b"UI\x01" + bytes(40), ("127.0.0.1", port))
        for _ in range(30_000):
            flooder.sock.sendto(command, ("127.0.0.1", port))
        raw.close()

    writer = threading.Thread(target=flood)
    writer.start()
    during = []
    while writer.is_alive():
        during.append(round_trip())
    writer.join()
    during += [round_trip() for _ in range(5)]
    print(
        f"UIN round trip: quiet max {max(quiet) * 1000:.2f} ms, during median "
        f"{sorted(during)[len(during) // 2] * 1000:.2f} ms, max {max(during) * 1000:.2f} ms "
        f"({len(during)} round trips)"
    )
    assert max(during) < max(1.0, 20 * max(quiet)), (quiet, during)
    assert node.log().count("dropped datagram from 127.0.0.2") == 1
    assert node.process is not None and node.process.poll() is None
    user.close()
    flooder.close()


def test_an_oscar_keepalive_flood_before_login_is_signed_off(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """OSCAR: sign-on then 50,000 keepalives, never logging in: signed off (channel 4,
    rate limit) long before the end; an MSN user's round trips stay quick meanwhile."""
    from adapters.oscar.codec import Keepalive, OscarCodec, Signoff, Signon

    node = gateway_node(["oscar", "msn"], adapter_settings={"oscar": OSCAR, "msn": MSN})
    node.add_account("msn", "bob@example.com", "pw-bob", "Bob")
    bob = _login(node, "bob@example.com", "pw-bob")
    quiet = [_round_trip(bob) for _ in range(5)]
    codec = OscarCodec(0x1000)
    flood = codec.send(Signon()) + b"".join(codec.send(Keepalive()) for _ in range(50_000))
    sock = socket.create_connection(("127.0.0.1", node.port("oscar")), timeout=10)
    writer = threading.Thread(target=_flood, args=(sock, flood))
    writer.start()
    during = [_round_trip(bob) for _ in range(20)]
    data, closed = _read_until_closed(sock, 20.0)
    writer.join(30)
    sock.close()
    assert closed, "the keepalive flood was never cut off"
    events = OscarCodec(0).receive_data(data)
    assert isinstance(events[-1], Signoff)
    assert "rate limit" in node.log()
    assert max(during) < max(1.0, 20 * max(quiet)), (quiet, during)
    bob.close()
