"""A blocking OSCAR client for end-to-end tests, built on our own codec. It logs in
the way libpurple does (BUCP MD5, then BOS in libpurple's order) and records every
FLAP frame each way, so a test can write the traffic out as a pcap for tshark."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from adapters.oscar import snac as S
from adapters.oscar.auth import bucp_digest
from adapters.oscar.codec import OscarCodec, Signoff, Signon, SnacEvent, WireEvent
from adapters.oscar.flap import FlapDecoder
from adapters.oscar.tlv import Tlv, find
from adapters.oscar.translate import build_fragments

Frame = tuple[str, bytes]  # ("c" client->server | "s" server->client, one FLAP frame)


@dataclass
class Recording:
    """Frames of one TCP connection, in order, and its two ports."""

    client_port: int
    server_port: int
    frames: list[Frame] = field(default_factory=list)


class Connection:
    def __init__(self, host: str, port: int, recordings: list[Recording]) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.codec = OscarCodec(0x2000)
        self.reader = FlapDecoder()
        self.recording = Recording(self.sock.getsockname()[1], port)
        recordings.append(self.recording)
        self.pending: list[WireEvent] = []
        self.reqid = 0

    def send(self, event: WireEvent) -> None:
        data = self.codec.send(event)
        self.recording.frames.append(("c", data))
        self.sock.sendall(data)

    def snac(self, body: S.SnacBody) -> int:
        self.reqid += 1
        self.send(SnacEvent(S.Snac(body, self.reqid)))
        return self.reqid

    def _read_more(self, deadline: float) -> None:
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        for frame in self.reader.receive_data(data):
            self.recording.frames.append(("s", frame.encode()))
        self.pending += self.codec.receive_data(data)

    def expect(self, match: Callable[[WireEvent], bool], timeout: float = 10.0) -> WireEvent:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.pending):
                if match(event):
                    del self.pending[i]
                    return event
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing matched; pending: {self.pending!r}"[:2000])
            self._read_more(deadline)

    def expect_snac(self, cls: type[S.SnacBody], timeout: float = 10.0) -> S.Snac:
        event = self.expect(
            lambda e: isinstance(e, SnacEvent) and isinstance(e.snac.body, cls), timeout
        )
        assert isinstance(event, SnacEvent)
        return event.snac

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.send(Signoff())
        self.sock.close()


class OscarClient:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.recordings: list[Recording] = []
        self.bos: Connection | None = None

    def login(
        self, name: str, password: str, prehashed: bool = True, ready: bool = True
    ) -> Connection:
        """BUCP then BOS in libpurple's order; ``ready=False`` stops before client-ready
        (01/02), which opens the gateway session."""
        auth = Connection(self.host, self.port, self.recordings)
        auth.expect(lambda e: isinstance(e, Signon))
        auth.send(Signon())
        auth.snac(S.BucpChallengeRequest((Tlv(1, name.encode()), Tlv(0x4B), Tlv(0x5A))))
        key = auth.expect_snac(S.BucpChallengeResponse).body
        assert isinstance(key, S.BucpChallengeResponse)
        tlvs = [
            Tlv(1, name.encode()),
            Tlv(0x25, bucp_digest(key.key, password.encode(), prehashed)),
            Tlv(3, b"gateway test client"),
        ]
        if prehashed:
            tlvs.append(Tlv(0x4C))
        auth.snac(S.BucpLoginRequest(tuple(tlvs)))
        reply = auth.expect_snac(S.BucpLoginResponse).body
        assert isinstance(reply, S.BucpLoginResponse)
        address, cookie = find(reply.tlvs, 5), find(reply.tlvs, 6)
        if address is None or cookie is None:
            raise PermissionError(f"login refused: {reply.tlvs!r}")
        auth.close()
        host, _, port = address.decode().rpartition(":")
        bos = Connection(host, int(port), self.recordings)
        bos.expect(lambda e: isinstance(e, Signon))
        bos.send(Signon((Tlv(6, cookie),)))
        bos.expect_snac(S.HostOnline)
        # libpurple's order (WIRE-NOTES)
        bos.snac(S.ClientVersions(((1, 3), (0x13, 4), (2, 1), (3, 1), (4, 1), (9, 1))))
        bos.snac(S.RateParamsQuery())
        rates = bos.expect_snac(S.RateParamsReply).body
        assert isinstance(rates, S.RateParamsReply)
        bos.snac(S.RateParamsSubAdd(tuple(c.class_id for c in rates.classes)))
        bos.snac(S.SelfInfoQuery())
        bos.snac(S.FeedbagRightsQuery())
        bos.snac(S.FeedbagQuery())
        bos.snac(S.LocateRightsQuery())
        bos.snac(S.BuddyRightsQuery())
        bos.snac(S.IcbmParamsQuery())
        bos.snac(S.PdRightsQuery())
        bos.expect_snac(S.PdRightsReply)
        bos.expect_snac(S.FeedbagReply)
        bos.snac(S.FeedbagUse())
        bos.snac(S.IcbmSetParams(0, 0x0B, 8000, 999, 999, 0))
        if ready:
            bos.snac(S.ClientOnline((S.ToolVersion(1, 3, 0x0110, 0x0629),)))
        self.bos = bos
        return bos

    def add_buddy(self, name: str, group: str = "Buddies", gid: int = 1, bid: int = 1) -> None:
        assert self.bos is not None
        self.bos.snac(S.FeedbagStartCluster())
        self.bos.snac(
            S.FeedbagInsertItems(
                (S.FeedbagItem(group, gid, 0, 1), S.FeedbagItem(name, gid, bid, 0))
            )
        )
        self.bos.expect_snac(S.FeedbagStatus)
        self.bos.snac(S.FeedbagEndCluster())

    def send_im(self, to: str, text: str, ack: bool = True) -> None:
        assert self.bos is not None
        tlvs = [Tlv(2, build_fragments(text))]
        if ack:
            tlvs.append(Tlv(3))
        self.bos.snac(S.IcbmToHost(b"\x01\x02\x03\x04\x05\x06\x07\x08", 1, to, tuple(tlvs)))
        if ack:
            self.bos.expect_snac(S.IcbmHostAck)

    def close(self) -> None:
        if self.bos is not None:
            self.bos.close()
