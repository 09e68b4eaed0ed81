"""The captured client sessions (vectors/oscar/*.txt) replayed byte for byte into the
server session; each client must get what it waits for and reach "online".

The captures' BOS sign-on carries the stand-in server's cookie 'COOKIE:tester123'.
Our cookies are signed, so the replay swaps that one TLV for a cookie our own auth
step issued moments before (``support.with_cookie``); every other byte is replayed
as captured. BitlBee always sends a 256-byte cookie TLV, which ours fill exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from adapters.oscar import session as M
from adapters.oscar import snac as S
from adapters.oscar.auth import COOKIE_LEN, CookieMint
from adapters.oscar.codec import Signoff, SnacEvent
from adapters.oscar.tlv import find, find_u16
from schema.events import Message, PresenceState
from schema.records import ContactEntry

from .support import FakeCore, ServerView, load_vector, new_session, with_cookie

ACCOUNTS = {"oscar:tester123": "secretpw", "oscar:123456789": "secretpw"}


@dataclass
class Replayed:
    sessions: list[M.OscarSession]
    views: list[ServerView]
    # per connection: the (family, subtype) pairs the server had sent when each client
    # frame arrived
    seen_before: list[list[list[tuple[int, int]]]]


def replay(name: str, core: FakeCore, byte_by_byte: bool = False) -> Replayed:
    mint = CookieMint()
    out = Replayed([], [], [])
    cookie = b""
    for connection in load_vector(name):
        session = new_session(mint)
        view = ServerView()
        view.feed(session.data_to_send())
        seen: list[list[tuple[int, int]]] = []
        for frame in connection:
            if frame[1] == 1 and len(frame) > 10:
                frame = with_cookie(frame, cookie)
            seen.append(view.pairs())
            chunks = [frame[i : i + 1] for i in range(len(frame))] if byte_by_byte else [frame]
            for chunk in chunks:
                core.run(session, session.receive_data(chunk, 1000.0), 1000.0)
            view.feed(session.data_to_send())
        for snac in view.snacs():
            if isinstance(snac.body, S.BucpLoginResponse):
                cookie = find(snac.body.tlvs, 0x0006) or b""
        out.sessions.append(session)
        out.views.append(view)
        out.seen_before.append(seen)
    return out


def core_with_buddy() -> FakeCore:
    return FakeCore(
        passwords=dict(ACCOUNTS),
        contacts={"oscar:tester123": [ContactEntry("oscar:buddy1", group="Friends")]},
        presence={"oscar:buddy1": PresenceState.AWAY},
    )


def login_reply(view: ServerView) -> S.BucpLoginResponse:
    (reply,) = [s.body for s in view.snacs() if isinstance(s.body, S.BucpLoginResponse)]
    return reply


def test_libpurple_md5_variant_1_logs_in_with_a_256_byte_cookie() -> None:
    """TLV 0x4C present: MD5(key + MD5(pw) + suffix) is accepted; 17/03 hands out
    the BOS address and a 256-byte cookie, answering the client's request id."""
    r = replay("libpurple-aim-session.txt", core_with_buddy())
    auth = r.views[0]
    assert auth.first_signon().tlvs == ()
    assert auth.pairs() == [(0x17, 0x07), (0x17, 0x03)]
    key = auth.snacs()[0]
    assert key.request_id == 1 and key.body == S.BucpChallengeResponse(b"1234567890")
    reply = login_reply(auth)
    assert auth.snacs()[1].request_id == 2
    assert find(reply.tlvs, 0x0005) == b"127.0.0.1:5190"
    assert len(find(reply.tlvs, 0x0006) or b"") == COOKIE_LEN
    assert find(reply.tlvs, 0x0008) is None


def test_libpurple_gets_09_03_and_13_06_before_it_sends_client_ready() -> None:
    """libpurple goes online only once both 09/03 and 13/06 arrived: they must be out
    before its 01/02, and it then reaches ONLINE."""
    r = replay("libpurple-aim-session.txt", core_with_buddy())
    bos = load_vector("libpurple-aim-session.txt")[1]
    ready_index = next(i for i, f in enumerate(bos) if f[6:10] == bytes.fromhex("00010002"))
    sent_before_ready = r.seen_before[1][ready_index]
    assert (0x09, 0x03) in sent_before_ready
    assert (0x13, 0x06) in sent_before_ready
    assert r.sessions[1].state is M.State.CLOSED  # it signed off at the end (channel 4)
    assert r.sessions[1].error is None


def test_libpurple_bos_replies_in_order_with_echoed_request_ids() -> None:
    """01/03 first, then one reply per query in the client's order, ids echoed."""
    r = replay("libpurple-aim-session.txt", core_with_buddy())
    view = r.views[1]
    pairs = view.pairs()
    assert pairs[0] == (0x01, 0x03)
    expected = [
        (0x01, 0x18),
        (0x01, 0x13),
        (0x01, 0x07),
        (0x01, 0x0F),
        (0x13, 0x03),
        (0x13, 0x06),
        (0x02, 0x03),
        (0x03, 0x03),
        (0x04, 0x05),
        (0x09, 0x03),
        (0x13, 0x0E),
    ]
    assert pairs[1 : 1 + len(expected)] == expected
    by_pair = {(s.family, s.subtype): s for s in view.snacs()}
    assert by_pair[(0x01, 0x07)].request_id == 4
    assert by_pair[(0x13, 0x06)].request_id == 8
    assert by_pair[(0x09, 0x03)].request_id == 0x0C


def test_libpurple_feedbag_holds_the_stored_buddy() -> None:
    """13/06 lists the root group, the buddy's group and the buddy with its ids."""
    r = replay("libpurple-aim-session.txt", core_with_buddy())
    (reply,) = [s.body for s in r.views[1].snacs() if isinstance(s.body, S.FeedbagReply)]
    names = [(i.name, i.class_id) for i in reply.items]
    assert names == [("", 1), ("Friends", 1), ("buddy1", 0)]


def test_libpurple_online_sees_its_away_buddy_and_sends_an_im() -> None:
    """After 01/02: the buddy arrives away (03/0B), the IM becomes a canonical
    message and TLV 3 gets a host ack (04/0C); 04/10 gets 04/17."""
    core = core_with_buddy()
    r = replay("libpurple-aim-session.txt", core)
    view = r.views[1]
    pairs = view.pairs()
    assert (0x03, 0x0B) in pairs and (0x04, 0x17) in pairs and (0x04, 0x0C) in pairs
    arrived = next(s.body for s in view.snacs() if isinstance(s.body, S.BuddyArrived))
    user_class = find_u16(arrived.users[0].tlvs, 0x0001) or 0
    assert arrived.users[0].screen_name == "buddy1" and user_class & 0x20
    messages = [e for e in core.submitted if isinstance(e, Message)]
    assert [(m.sender, m.recipient, m.body) for m in messages] == [
        ("oscar:tester123", "oscar:buddy1", "hello back from irc"),
        ("oscar:tester123", "oscar:buddy1", "hello back from native"),
    ][:1]
    assert core.opened == ["oscar:tester123", "oscar:123456789"]


def test_libpurple_icq_account_logs_in_with_its_uin() -> None:
    """The same client with ICQ number 123456789 logs in and goes online."""
    core = core_with_buddy()
    r = replay("libpurple-aim-session.txt", core)
    assert find(login_reply(r.views[2]).tlvs, 0x0001) == b"123456789"
    icq_bos = r.views[3]
    assert (0x13, 0x06) in icq_bos.pairs() and (0x04, 0x17) in icq_bos.pairs()
    assert "oscar:123456789" in core.opened
    assert r.sessions[3].error is None


def test_bitlbee_md5_variant_2_reaches_online_and_sends_an_im() -> None:
    """Without TLV 0x4C the digest is MD5(key + pw + suffix); BitlBee's 256-byte
    cookie TLV fits ours exactly, its reqid-0 queries are answered with id 0, it
    reaches ONLINE and its message arrives."""
    core = core_with_buddy()
    r = replay("bitlbee-native-aim-session.txt", core)
    assert find(login_reply(r.views[0]).tlvs, 0x0008) is None
    session, view = r.sessions[1], r.views[1]
    assert session.state is M.State.ONLINE and session.error is None
    rate_reply = next(s for s in view.snacs() if isinstance(s.body, S.RateParamsReply))
    assert rate_reply.request_id == 0
    assert [m.body for m in core.submitted if isinstance(m, Message)] == ["hello back from native"]
    assert (0x04, 0x0C) in view.pairs()  # its TLV 3 ack request
    assert (0x01, 0x01) in view.pairs()  # 01/04 for chat navigation: cleanly refused


def test_replay_byte_by_byte_gives_the_same_server_replies() -> None:
    """Feeding every captured frame one byte at a time changes nothing."""
    whole = replay("bitlbee-native-aim-session.txt", core_with_buddy())
    split = replay("bitlbee-native-aim-session.txt", core_with_buddy(), byte_by_byte=True)
    assert [v.pairs() for v in whole.views] == [v.pairs() for v in split.views]


@pytest.mark.parametrize("name", ["libpurple-aim-session.txt", "bitlbee-native-aim-session.txt"])
def test_wrong_password_is_refused_with_error_code_5(name: str) -> None:
    """A digest made with another password gets 17/03 with TLV 8 = 5, no cookie."""
    core = FakeCore(passwords={"oscar:tester123": "otherpw", "oscar:123456789": "otherpw"})
    r = replay(name, core)
    reply = login_reply(r.views[0])
    assert find_u16(reply.tlvs, 0x0008) == 5 and find(reply.tlvs, 0x0006) is None
    # and the next connection's cookie (none) is refused with a sign-off
    assert r.sessions[1].error is not None
    assert isinstance(r.views[1].events[-1], Signoff)


def test_unknown_account_still_gets_a_key_then_error_1() -> None:
    """Key requests never reveal whether an account exists."""
    r = replay("bitlbee-native-aim-session.txt", FakeCore())
    auth = r.views[0]
    assert isinstance(auth.snacs()[0].body, S.BucpChallengeResponse)
    assert find_u16(login_reply(auth).tlvs, 0x0008) == 1


def test_stand_in_cookie_is_refused_with_a_signoff() -> None:
    """The capture's unsigned 'COOKIE:tester123' is not accepted as a BOS login."""
    session = new_session(CookieMint())
    view = ServerView()
    frame = load_vector("libpurple-aim-session.txt")[1][0]
    session.receive_data(frame, 0.0)
    view.feed(session.data_to_send())
    assert session.closed and "cookie" in str(session.error)
    last = view.events[-1]
    assert isinstance(last, Signoff) and find(last.tlvs, 0x0009) is not None
    assert not [e for e in view.events if isinstance(e, SnacEvent)]
