"""Write recorded TCP conversations as a classic pcap file (Ethernet/IPv4/TCP), one
FLAP frame per packet, with a proper handshake and sequence numbers, so tshark can
dissect traffic we captured at the socket without needing capture privileges."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from .oscar_client import Recording

_CLIENT_MAC = bytes.fromhex("020000000001")
_SERVER_MAC = bytes.fromhex("020000000002")
_LOOPBACK = bytes([127, 0, 0, 1])
SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def _packet(
    src_port: int, dst_port: int, seq: int, ack: int, flags: int, payload: bytes, to_server: bool
) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", src_port, dst_port, seq, ack, 5 << 4, flags, 65535, 0, 0)
    pseudo = _LOOPBACK + _LOOPBACK + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    csum = _checksum(pseudo + tcp + payload)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0, _LOOPBACK, _LOOPBACK)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    macs = (_SERVER_MAC + _CLIENT_MAC) if to_server else (_CLIENT_MAC + _SERVER_MAC)
    return macs + b"\x08\x00" + ip + tcp + payload


def conversation(rec: Recording) -> Iterable[bytes]:
    c, s = rec.client_port, rec.server_port
    cseq, sseq = 1000, 5000
    yield _packet(c, s, cseq, 0, SYN, b"", True)
    yield _packet(s, c, sseq, cseq + 1, SYN | ACK, b"", False)
    cseq += 1
    sseq += 1
    yield _packet(c, s, cseq, sseq, ACK, b"", True)
    for direction, data in rec.frames:
        if direction == "c":
            yield _packet(c, s, cseq, sseq, PSH | ACK, data, True)
            cseq += len(data)
        else:
            yield _packet(s, c, sseq, cseq, PSH | ACK, data, False)
            sseq += len(data)
    yield _packet(c, s, cseq, sseq, FIN | ACK, b"", True)
    yield _packet(s, c, sseq, cseq + 1, FIN | ACK, b"", False)


def write_pcap(path: Path, recordings: Iterable[Recording]) -> int:
    """Write the conversations one after another; returns the packet count."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    count = 0
    t = 1_700_000_000.0
    for rec in recordings:
        for packet in conversation(rec):
            t += 0.001
            sec, usec = int(t), int((t % 1) * 1_000_000)
            out.append(struct.pack("<IIII", sec, usec, len(packet), len(packet)) + packet)
            count += 1
    path.write_bytes(b"".join(out))
    return count
