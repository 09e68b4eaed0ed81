"""A small blocking MSN client over real sockets, built on our own client-side codec."""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import time

from adapters.msn import challenge
from adapters.msn.codec import Command, CommandCodec, Frame, Role


class MsnClient:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.codec = CommandCodec(Role.CLIENT)
        self.frames: list[Frame] = []
        self.trid = 0
        self.timeout = timeout

    def send(self, verb: str, *args: str, payload: bytes | None = None) -> int:
        self.trid += 1
        self.sock.sendall(self.codec.send(Command(verb, self.trid, args, payload)))
        return self.trid

    def expect(self, verb: str, trid: int | None = None) -> Command:
        """Read until a command with ``verb`` (and ``trid``) arrives; keep the rest."""
        return self._wait(verb, trid, drop_earlier=True)

    def take(self, verb: str, trid: int | None = None) -> Command:
        """Like :meth:`expect`, but remove only the frame taken: whatever arrived
        before it stays for later reads (order between two rooms is not fixed)."""
        return self._wait(verb, trid, drop_earlier=False)

    def _wait(self, verb: str, trid: int | None, drop_earlier: bool) -> Command:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, frame in enumerate(self.frames):
                if (
                    isinstance(frame, Command)
                    and frame.verb == verb
                    and (trid is None or frame.trid == trid)
                ):
                    del self.frames[(0 if drop_earlier else i) : i + 1]
                    return frame
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {verb} in {self.frames}")
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed while waiting for {verb}; had {self.frames}")
            self.frames += self.codec.receive_data(data)

    def close(self) -> None:
        self.sock.close()


def _unverified() -> ssl.SSLContext:
    """TLS without checking the gateway's self-signed certificate (tests of the
    certificate itself are in test_msn_https_login.py)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def passport_ticket(http_port: int, email: str, password: str) -> str:
    """The two Tweener HTTPS steps: nexus, then the login URL it names."""
    conn = http.client.HTTPSConnection("127.0.0.1", http_port, timeout=10, context=_unverified())
    conn.request("GET", "/rdr/pprdr.asp")
    response = conn.getresponse()
    response.read()
    urls = response.getheader("PassportURLs") or ""
    da_login = next(p.split("=", 1)[1] for p in urls.split(",") if p.startswith("DALogin="))
    host, _, path = da_login.partition("/")
    login = http.client.HTTPSConnection(host, timeout=10, context=_unverified())
    header = (
        "Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,"
        f"sign-in={email.replace('@', '%40')},pwd={password},lc=1033,id=507"
    )
    login.request("GET", "/" + path, headers={"Authorization": header})
    answer = login.getresponse()
    answer.read()
    info = answer.getheader("Authentication-Info") or ""
    if "from-PP='t=" not in info:
        raise PermissionError(f"sign-in refused ({answer.status})")
    return info.split("from-PP='t=", 1)[1].split("&", 1)[0]


def login(ns_port: int, http_port: int, email: str, password: str, version: int = 8) -> MsnClient:
    """Log in (MD5 below MSNP8, TWN from MSNP8), go online and answer the challenge."""
    client = MsnClient(ns_port)
    client.send("VER", f"MSNP{version}", "CVR0")
    client.expect("VER")
    if version >= 8:
        client.send("USR", "TWN", "I", email)
        client.expect("USR")
        ticket = passport_ticket(http_port, email, password)
        client.send("USR", "TWN", "S", f"t={ticket}&p=x")
    else:
        client.send("USR", "MD5", "I", email)
        salt = client.expect("USR").args[2]
        client.send("USR", "MD5", "S", hashlib.md5((salt + password).encode()).hexdigest())
    ok = client.expect("USR")
    assert ok.args[0] == "OK", ok
    client.send("CHG", "NLN", "0")
    chl = client.expect("CHL")
    product = challenge.default_product(version)
    answer = challenge.expected_answer(chl.args[0], product)
    assert answer is not None
    trid = client.send("QRY", product, payload=answer.encode())
    client.expect("QRY", trid)
    return client


def open_switchboard(ns: MsnClient, email: str) -> MsnClient:
    trid = ns.send("XFR", "SB")
    xfr = ns.expect("XFR", trid)
    host, _, port = xfr.args[1].partition(":")
    sb = MsnClient(int(port), host)
    sb.send("USR", email, xfr.args[3])
    sb.expect("USR")
    return sb


def answer_ring(ns: MsnClient, email: str) -> MsnClient:
    rng = ns.expect("RNG")
    host, _, port = rng.args[1].partition(":")
    sb = MsnClient(int(port), host)
    sb.send("ANS", email, rng.args[3], rng.args[0])
    sb.expect("ANS")
    return sb


def text(body: str) -> bytes:
    return (
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        "X-MMS-IM-Format: FN=Arial; EF=; CO=0; CS=0; PF=22\r\n\r\n" + body
    ).encode()
