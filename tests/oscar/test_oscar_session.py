"""The server session: its state table, logins, messaging, presence, feedbag, ICQ
family, rate limits and timers, driven with our own client codec and a fake core."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.oscar import session as M
from adapters.oscar import snac as S
from adapters.oscar import translate as T
from adapters.oscar.auth import CookieMint, bucp_digest, roast
from adapters.oscar.codec import (
    Keepalive,
    OscarCodec,
    Signoff,
    Signon,
    SnacEvent,
    WireEvent,
)
from adapters.oscar.errors import OscarProtocolError
from adapters.oscar.tlv import Tlv, find, find_u16
from schema.events import (
    Authorization,
    ContactRequest,
    DeliveryFailure,
    FailureReason,
    FormatSpan,
    Message,
    Presence,
    PresenceState,
    Style,
    Typing,
)
from schema.records import ContactEntry

from .support import FakeCore, ServerView, new_session

NOW = 1000.0


class Client:
    """One client connection driven by our own codec against one server session."""

    def __init__(self, core: FakeCore, mint: CookieMint, now: float = NOW) -> None:
        self.core = core
        self.session = new_session(mint, now)
        self.codec = OscarCodec(0x100)
        self.view = ServerView()
        self.now = now
        self.reqid = 0
        self.pump()

    def pump(self) -> list[WireEvent]:
        return self.view.feed(self.session.data_to_send())

    def send(self, event: WireEvent) -> list[WireEvent]:
        self.core.run(
            self.session, self.session.receive_data(self.codec.send(event), self.now), self.now
        )
        return self.pump()

    def snac(self, body: S.SnacBody, reqid: int | None = None) -> list[WireEvent]:
        self.reqid += 1
        return self.send(SnacEvent(S.Snac(body, self.reqid if reqid is None else reqid)))

    def replies(self, events: list[WireEvent]) -> list[S.SnacBody]:
        return [e.snac.body for e in events if isinstance(e, SnacEvent)]


def login(
    core: FakeCore, mint: CookieMint, name: str, password: str, prehashed: bool = True
) -> bytes:
    c = Client(core, mint)
    c.send(Signon())
    (key,) = c.replies(c.snac(S.BucpChallengeRequest((Tlv(1, name.encode()),))))
    assert isinstance(key, S.BucpChallengeResponse)
    tlvs = [Tlv(1, name.encode()), Tlv(0x25, bucp_digest(key.key, password.encode(), prehashed))]
    if prehashed:
        tlvs.append(Tlv(0x4C))
    (reply,) = c.replies(c.snac(S.BucpLoginRequest(tuple(tlvs))))
    assert isinstance(reply, S.BucpLoginResponse)
    return find(reply.tlvs, 6) or b""


def online(
    core: FakeCore,
    mint: CookieMint,
    name: str,
    icbm_flags: int = 0x0B,
    feedbag: bool = True,
) -> Client:
    cookie = login(core, mint, name, core.passwords[f"oscar:{name}"])
    c = Client(core, mint)
    c.send(Signon((Tlv(6, cookie),)))
    c.snac(S.ClientVersions(((1, 4), (0x13, 4))))
    c.snac(S.RateParamsQuery())
    c.snac(S.RateParamsSubAdd((1, 2)))
    if feedbag:
        c.snac(S.FeedbagQuery())
        c.snac(S.FeedbagUse())
    c.snac(S.IcbmSetParams(0, icbm_flags, 8000, 999, 999, 0))
    c.snac(S.ClientOnline((S.ToolVersion(1, 4, 0x110, 0x629),)))
    assert c.session.state is M.State.ONLINE, c.session.error
    return c


@pytest.fixture
def core() -> FakeCore:
    return FakeCore(
        passwords={
            "oscar:alice": "pw-a",
            "oscar:bob": "pw-b",
            "oscar:123456": "pw-c",
            "oscar:654321": "pw-d",
        }
    )


@pytest.fixture
def mint() -> CookieMint:
    return CookieMint(b"s" * 32)


# ---------------------------------------------------------------- the state table


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(M.State)), st.sampled_from(list(M.Input)))
def test_every_state_input_pair_follows_the_table(state: M.State, event: M.Input) -> None:
    """A pair in the table moves to its state; any other pair is a protocol error."""
    session = new_session(CookieMint())
    session.state = state
    expected = M.TRANSITIONS.get((state, event))
    if expected is None:
        with pytest.raises(OscarProtocolError, match="not allowed"):
            session._step(event)
    else:
        session._step(event)
        assert session.state is expected


def test_table_has_no_exit_from_closed() -> None:
    """CLOSED accepts nothing, and every other state can be left by a sign-off."""
    assert not [k for k in M.TRANSITIONS if k[0] is M.State.CLOSED]
    for state in M.State:
        if state is not M.State.CLOSED:
            assert M.TRANSITIONS[(state, M.Input.SIGNOFF)] is M.State.CLOSED


def test_server_speaks_first_with_channel_1_version_1(mint: CookieMint) -> None:
    """Every connection opens with our 2a 01 <seq> 00 04 00 00 00 01."""
    session = new_session(mint)
    data = session.data_to_send()
    assert data[:2] == b"\x2a\x01" and data[4:] == bytes.fromhex("000400000001")


def test_snac_before_signon_closes_with_a_signoff(core: FakeCore, mint: CookieMint) -> None:
    """A SNAC as the first frame is out of order: sign-off, closed, error kept."""
    c = Client(core, mint)
    events = c.snac(S.RateParamsQuery())
    assert c.session.closed and isinstance(events[-1], Signoff)
    assert "AWAIT_SIGNON" in str(c.session.error)


def test_garbage_in_bos_closes_that_connection_and_its_session(
    core: FakeCore, mint: CookieMint
) -> None:
    """A malformed frame after login: channel-4 goodbye and the core session closed."""
    c = online(core, mint, "alice")
    # a well-formed FLAP frame (next sequence number) whose SNAC header is cut short
    seq = c.codec.send(Keepalive())[2:4]
    bad = b"\x2a\x02" + seq + b"\x00\x03\x00\x01\x00"
    c.core.run(c.session, c.session.receive_data(bad, NOW), NOW)
    events = c.pump()
    assert c.session.closed and isinstance(events[-1], Signoff)
    assert "SNAC header" in str(c.session.error)
    assert core.closed == ["s1"]


def test_oversized_frame_before_login_is_refused(core: FakeCore, mint: CookieMint) -> None:
    """Before a cookie is accepted frames are capped at 2 KiB."""
    c = Client(core, mint)
    c.session.receive_data(b"\x2a\x01\x00\x00\x10\x00", NOW)
    assert c.session.closed and "exceeds" in str(c.session.error)


# ---------------------------------------------------------------- logins


def test_md5_login_then_bos_goes_online_and_opens_a_core_session(
    core: FakeCore, mint: CookieMint
) -> None:
    """BUCP login, cookie, negotiation, 01/02: the core opens a session."""
    c = online(core, mint, "alice")
    assert core.opened == ["oscar:alice"]
    assert c.session.session_id == "s1"


def test_screen_names_are_case_and_space_insensitive(core: FakeCore, mint: CookieMint) -> None:
    """'Al Ice'... 'ALICE' logs in as oscar:alice."""
    cookie = login(core, mint, "ALICE", "pw-a")
    assert mint.redeem(cookie, NOW).address == "oscar:alice"


def test_roasted_channel_1_login_answers_on_channel_4_and_hangs_up(
    core: FakeCore, mint: CookieMint
) -> None:
    """Old ICQ login: TLV 1 UIN + TLV 2 roasted password -> ch4 BOS address and cookie."""
    c = Client(core, mint)
    events = c.send(Signon((Tlv(1, b"123456"), Tlv(2, roast(b"pw-c")), Tlv(3, b"ICQ 2000b"))))
    (reply,) = events
    assert isinstance(reply, Signoff)
    assert find(reply.tlvs, 1) == b"123456"
    assert find(reply.tlvs, 5) == b"127.0.0.1:5190"
    assert len(find(reply.tlvs, 6) or b"") == 256
    assert c.session.closed and c.session.error is None


def test_roasted_login_with_a_wrong_password_gets_error_5(core: FakeCore, mint: CookieMint) -> None:
    """Wrong roasted password: channel 4 with TLV 8 = 5 and no cookie."""
    c = Client(core, mint)
    (reply,) = c.send(Signon((Tlv(1, b"123456"), Tlv(2, roast(b"nope")))))
    assert isinstance(reply, Signoff)
    assert find_u16(reply.tlvs, 8) == 5 and find(reply.tlvs, 6) is None


def test_throttled_login_gets_error_0x18_reconnecting_too_fast(
    core: FakeCore, mint: CookieMint
) -> None:
    """A login the core throttles: channel 4 with TLV 8 = 0x18 ("try later"), no cookie."""
    core.throttled = True
    c = Client(core, mint)
    (reply,) = c.send(Signon((Tlv(1, b"123456"), Tlv(2, roast(b"pw-c")))))
    assert isinstance(reply, Signoff)
    assert find_u16(reply.tlvs, 8) == 0x18 and find(reply.tlvs, 6) is None


def test_a_cookie_works_once(core: FakeCore, mint: CookieMint) -> None:
    """Replaying a BOS cookie on a second connection is refused."""
    cookie = login(core, mint, "bob", "pw-b")
    first = Client(core, mint)
    first.send(Signon((Tlv(6, cookie),)))
    second = Client(core, mint)
    second.send(Signon((Tlv(6, cookie),)))
    assert not first.session.closed
    assert second.session.closed and "already used" in str(second.session.error)


def test_auth_connection_is_closed_after_the_grace_period(core: FakeCore, mint: CookieMint) -> None:
    """A client that never hangs up after 17/03 is dropped quietly."""
    c = Client(core, mint)
    c.send(Signon())
    c.snac(S.BucpChallengeRequest((Tlv(1, b"bob"),)))
    c.snac(S.BucpLoginRequest((Tlv(1, b"bob"), Tlv(0x25, bytes(16)))))
    when = c.session.get_timer()
    assert when is not None and when <= NOW + 10
    c.session.handle_timer(when)
    assert c.session.closed and c.session.error is None


# ---------------------------------------------------------------- BOS behaviour


def test_service_requests_are_refused_cleanly(core: FakeCore, mint: CookieMint) -> None:
    """01/04 for chat navigation gets 01/01 'service unavailable' with the same id."""
    c = online(core, mint, "alice")
    events = c.snac(S.ServiceRequest(0x0D), reqid=77)
    (event,) = events
    assert isinstance(event, SnacEvent) and event.snac.request_id == 77
    assert event.snac.body == S.SnacError(1, S.ERR_SERVICE_UNAVAILABLE)


def test_unknown_snacs_get_an_error_not_a_disconnect(core: FakeCore, mint: CookieMint) -> None:
    """A family we do not offer gets xx/01 and the connection stays up."""
    c = online(core, mint, "alice")
    (body,) = c.replies(c.snac(S.UnknownBody(0x0D, 0x02, b"")))
    assert body == S.SnacError(0x0D, S.ERR_SERVICE_NOT_DEFINED)
    assert not c.session.closed


def test_warnings_are_off(core: FakeCore, mint: CookieMint) -> None:
    """04/08 (warn a user) is refused."""
    c = online(core, mint, "alice")
    (body,) = c.replies(c.snac(S.IcbmEvilRequest(0, "bob")))
    assert body == S.SnacError(4, S.ERR_REQUEST_DENIED)


def test_outgoing_html_im_becomes_a_canonical_message_with_spans(
    core: FakeCore, mint: CookieMint
) -> None:
    """04/06 channel 1 with HTML: body, bold span, recipient from the screen name."""
    c = online(core, mint, "alice")
    data = T.build_fragments("<HTML><BODY><B>Hi</B> Bob</BODY></HTML>")
    c.snac(S.IcbmToHost(b"12345678", 1, "B o B", (Tlv(2, data),)))
    (msg,) = [e for e in core.submitted if isinstance(e, Message)]
    assert (msg.recipient, msg.body) == ("oscar:bob", "Hi Bob")
    assert msg.spans == (FormatSpan(start=0, end=2, style=Style.BOLD),)


def test_icq_channel_4_message_and_ucs2_text(core: FakeCore, mint: CookieMint) -> None:
    """Channel 4 plain type and UCS-2BE channel 1 both arrive as text."""
    c = online(core, mint, "123456")
    block = T.IcqChannel4(123456, T.ICQ_MSG_PLAIN, 0, T.encode_icq_text("hello"))
    c.snac(S.IcbmToHost(bytes(8), 4, "654321", (Tlv(5, block.encode()),)))
    c.snac(S.IcbmToHost(bytes(8), 1, "654321", (Tlv(2, T.build_fragments("Привет")),)))
    bodies = [e.body for e in core.submitted if isinstance(e, Message)]
    assert bodies == ["hello", "Привет"]


def test_invalid_recipient_gets_not_logged_on(core: FakeCore, mint: CookieMint) -> None:
    """An IM to a name that cannot be an AIM/ICQ id is refused with 04/01 code 4."""
    c = online(core, mint, "alice")
    (body,) = c.replies(c.snac(S.IcbmToHost(bytes(8), 1, "!!", (Tlv(2, T.build_fragments("x")),))))
    assert body == S.SnacError(4, S.ERR_NOT_LOGGED_ON)


def test_delivery_failure_reports_offline_recipient_with_the_original_request_id(
    core: FakeCore, mint: CookieMint
) -> None:
    """A DeliveryFailure for our message comes back as 04/01 code 4 on its reqid."""
    c = online(core, mint, "alice")
    c.snac(S.IcbmToHost(bytes(8), 1, "nobody", (Tlv(2, T.build_fragments("x")),)), reqid=42)
    (msg,) = [e for e in core.submitted if isinstance(e, Message)]
    failure = DeliveryFailure(
        sender="oscar:nobody",
        recipient="oscar:alice",
        message_id=msg.id,
        reason=FailureReason.UNKNOWN_RECIPIENT,
    )
    assert c.session.deliver(failure, "nobody", NOW)
    (event,) = c.pump()
    assert isinstance(event, SnacEvent) and event.snac.request_id == 42
    assert event.snac.body == S.SnacError(4, S.ERR_NOT_LOGGED_ON)


def test_incoming_message_to_aim_client_is_html_with_sender_info(
    core: FakeCore, mint: CookieMint
) -> None:
    """04/07 channel 1: the peer as sender, HTML body, typing-capable TLV 0x0B."""
    c = online(core, mint, "alice")
    msg = Message(
        sender="oscar:bob",
        recipient="oscar:alice",
        body="a & b",
        spans=(FormatSpan(start=0, end=1, style=Style.ITALIC),),
    )
    c.session.deliver(msg, "bob", NOW)
    (event,) = c.pump()
    assert isinstance(event, SnacEvent)
    body = event.snac.body
    assert isinstance(body, S.IcbmToClient) and body.channel == 1
    assert body.sender.screen_name == "bob"
    assert (
        T.fragments_text(find(body.tlvs, 2) or b"") == "<HTML><BODY><I>a</I> &amp; b</BODY></HTML>"
    )
    assert find(body.tlvs, 0x0B) == b""


def test_incoming_message_to_icq_client_is_plain_latin1(core: FakeCore, mint: CookieMint) -> None:
    """ICQ clients get plain text, in the narrowest charset (here ISO-8859-1)."""
    c = online(core, mint, "123456")
    c.session.deliver(
        Message(sender="oscar:654321", recipient="oscar:123456", body="Grüße"), "654321", NOW
    )
    (event,) = c.pump()
    assert isinstance(event, SnacEvent) and isinstance(event.snac.body, S.IcbmToClient)
    _, parts = T.parse_fragments(find(event.snac.body.tlvs, 2) or b"")
    assert parts[0].charset == T.CHARSET_LATIN1 and parts[0].raw == "Grüße".encode("latin-1")


def test_typing_both_ways_and_only_to_clients_that_asked(core: FakeCore, mint: CookieMint) -> None:
    """04/14 becomes Typing; Typing goes out as 04/14 only with ICBM flag 0x08."""
    c = online(core, mint, "alice")
    c.snac(S.IcbmClientEvent(bytes(8), 1, "bob", 2))
    c.snac(S.IcbmClientEvent(bytes(8), 1, "bob", 0))
    assert [e.active for e in core.submitted if isinstance(e, Typing)] == [True, False]
    c.session.deliver(Typing(sender="oscar:bob", recipient="oscar:alice", active=True), "bob", NOW)
    (event,) = c.pump()
    assert isinstance(event, SnacEvent) and event.snac.body == S.IcbmClientEvent(
        bytes(8), 1, "bob", 2
    )
    quiet = online(core, mint, "bob", icbm_flags=0x03)
    quiet.session.deliver(
        Typing(sender="oscar:alice", recipient="oscar:bob", active=True), "alice", NOW
    )
    assert quiet.pump() == []


def test_buddy_presence_arrives_and_departs(core: FakeCore, mint: CookieMint) -> None:
    """Presence online -> 03/0B; offline or invisible -> 03/0C."""
    c = online(core, mint, "alice")
    c.session.deliver(
        Presence(sender="oscar:bob", recipient="oscar:alice", state=PresenceState.ONLINE),
        "bob",
        NOW,
    )
    c.session.deliver(
        Presence(sender="oscar:bob", recipient="oscar:alice", state=PresenceState.INVISIBLE),
        "bob",
        NOW,
    )
    assert [type(b).__name__ for b in c.replies(c.pump())] == ["BuddyArrived", "BuddyDeparted"]


def test_away_buddy_has_its_away_message_on_request(core: FakeCore, mint: CookieMint) -> None:
    """02/15 for an away buddy returns the away text; for an offline one, error 4."""
    c = online(core, mint, "alice")
    c.session.deliver(
        Presence(
            sender="oscar:bob",
            recipient="oscar:alice",
            state=PresenceState.AWAY,
            status_text="lunch",
        ),
        "bob",
        NOW,
    )
    c.pump()
    (info,) = c.replies(c.snac(S.LocateUserInfoQuery2(0x02, "bob")))
    assert isinstance(info, S.LocateUserInfoReply)
    assert b"lunch" in (find(info.tlvs, 4) or b"")
    (err,) = c.replies(c.snac(S.LocateUserInfoQuery2(0x02, "carol")))
    assert err == S.SnacError(2, S.ERR_NOT_LOGGED_ON)


def test_self_status_changes_reach_the_core(core: FakeCore, mint: CookieMint) -> None:
    """ICQ status word, AIM away message and invisibility each set the presence."""
    c = online(core, mint, "123456")
    c.snac(S.SetUserInfoFields((Tlv.u32(6, 0x0011),)))
    c.snac(S.SetUserInfoFields((Tlv.u32(6, 0x0100),)))
    c.snac(S.SetUserInfoFields((Tlv.u32(6, 0x0000),)))
    c.snac(S.LocateSetInfo((Tlv(3, b'text/aolrtf; charset="us-ascii"'), Tlv(4, b"<b>gone</b>"))))
    c.snac(S.LocateSetInfo((Tlv(4, b""),)))
    assert [(p, t) for _, p, t in core.presence_sets] == [
        (PresenceState.BUSY, ""),
        (PresenceState.INVISIBLE, ""),
        (PresenceState.ONLINE, ""),
        (PresenceState.AWAY, "gone"),
        (PresenceState.ONLINE, ""),
    ]


def test_status_set_before_client_ready_goes_into_open_session(
    core: FakeCore, mint: CookieMint
) -> None:
    """An away message set during negotiation opens the session as away."""
    cookie = login(core, mint, "bob", "pw-b")
    c = Client(core, mint)
    c.send(Signon((Tlv(6, cookie),)))
    c.snac(S.LocateSetInfo((Tlv(4, b"busy now"),)))
    c.snac(S.ClientOnline(()))
    assert core.presence["oscar:bob"] is PresenceState.AWAY


def test_offline_retrieve_before_session_opens_is_answered_after(
    core: FakeCore, mint: CookieMint
) -> None:
    """BitlBee sends 04/10 right after 01/02: 04/17 follows the offline messages."""
    cookie = login(core, mint, "alice", "pw-a")
    core.offline["oscar:alice"] = [
        (Message(sender="oscar:bob", recipient="oscar:alice", body="old"), "bob")
    ]
    c = Client(core, mint)
    c.send(Signon((Tlv(6, cookie),)))
    core.hold_answers = True
    c.snac(S.ClientOnline(()))
    c.snac(S.IcbmOfflineRetrieve(), reqid=0)
    core.release(c.session, NOW)
    pairs = [(s.family, s.subtype) for s in (e.snac for e in c.pump() if isinstance(e, SnacEvent))]
    assert pairs.index((4, 7)) < pairs.index((4, 0x17))


# ---------------------------------------------------------------- feedbag


def test_feedbag_add_delete_and_deny_update_the_core(core: FakeCore, mint: CookieMint) -> None:
    """13/08 buddy -> put_contact; 13/08 deny -> blocked; 13/0A -> remove_contact."""
    c = online(core, mint, "alice")
    group = S.FeedbagItem("Work", 5, 0, 1)
    buddy = S.FeedbagItem("bob", 5, 9, 0, (Tlv(0x131, b"Bobby"),))
    c.snac(S.FeedbagStartCluster())
    (status,) = c.replies(c.snac(S.FeedbagInsertItems((group, buddy))))
    c.snac(S.FeedbagEndCluster())
    assert status == S.FeedbagStatus((0, 0))
    owner, entry = core.stored[-1]
    assert (owner, entry.contact, entry.group, entry.display_name) == (
        "oscar:alice",
        "oscar:bob",
        "Work",
        "Bobby",
    )
    c.snac(S.FeedbagInsertItems((S.FeedbagItem("carol", 0, 3, 3),)))
    assert core.stored[-1][1].contact == "oscar:carol" and core.stored[-1][1].blocked
    (status,) = c.replies(c.snac(S.FeedbagDeleteItems((buddy,))))
    assert status == S.FeedbagStatus((0,))
    assert core.dropped == [("oscar:alice", "oscar:bob")]
    (status,) = c.replies(c.snac(S.FeedbagDeleteItems((buddy,))))
    assert status == S.FeedbagStatus((2,))


def test_feedbag_reply_lists_stored_contacts_with_stable_ids(mint: CookieMint) -> None:
    """Stored SSI ids come back unchanged; deny entries become class-3 items."""
    core = FakeCore(
        passwords={"oscar:alice": "pw"},
        contacts={
            "oscar:alice": [
                ContactEntry("oscar:bob", group="Work", network_data='{"b": 9, "g": 5}'),
                ContactEntry("oscar:carol", subscribed=False, blocked=True),
            ]
        },
    )
    c = online(core, mint, "alice")
    (reply,) = [b for b in c.replies(c.view.events) if isinstance(b, S.FeedbagReply)]
    assert [(i.name, i.group_id, i.item_id, i.class_id) for i in reply.items] == [
        ("", 0, 0, 1),
        ("Work", 5, 0, 1),
        ("bob", 5, 9, 0),
        ("carol", 0, 1, 3),
    ]
    assert reply.items[0].tlvs == (Tlv(0xC8, b"\x00\x05"),)
    assert reply.items[1].tlvs == (Tlv(0xC8, b"\x00\x09"),)


def test_feedbag_deny_all_makes_the_user_invisible(core: FakeCore, mint: CookieMint) -> None:
    """A permit/deny item with mode 2 (block all) sets the presence invisible."""
    c = online(core, mint, "alice")
    c.snac(S.FeedbagInsertItems((S.FeedbagItem("", 0, 1, 4, (Tlv(0xCA, b"\x02"),)),)))
    assert core.presence_sets[-1][1] is PresenceState.INVISIBLE


def test_client_side_buddy_list_is_watched(core: FakeCore, mint: CookieMint) -> None:
    """03/04 stores the buddy and asks for its presence; an online one arrives."""
    core.presence["oscar:bob"] = PresenceState.ONLINE
    c = online(core, mint, "alice", feedbag=False)
    events = c.snac(S.BuddyAdd(("bob",)))
    assert core.stored[-1][1].contact == "oscar:bob"
    assert [type(b).__name__ for b in c.replies(events)] == ["BuddyArrived"]


def test_authorization_requests_and_replies(core: FakeCore, mint: CookieMint) -> None:
    """13/18 -> ContactRequest, 13/1A -> Authorization; incoming ones as 13/19, 13/1B."""
    c = online(core, mint, "123456")
    c.snac(S.FeedbagRequestAuthToHost("654321", "let me add you", b"\x00\x00"))
    c.snac(S.FeedbagRespondAuthToHost("654321", 0, "no", b""))
    request, answer = core.submitted[-2:]
    assert isinstance(request, ContactRequest) and request.text == "let me add you"
    assert isinstance(answer, Authorization) and not answer.granted
    c.session.deliver(
        ContactRequest(sender="oscar:654321", recipient="oscar:123456", text="hi"), "654321", NOW
    )
    c.session.deliver(
        Authorization(sender="oscar:654321", recipient="oscar:123456", granted=True), "654321", NOW
    )
    bodies = c.replies(c.pump())
    assert isinstance(bodies[0], S.FeedbagRequestAuthToClient) and bodies[0].reason == "hi"
    assert isinstance(bodies[1], S.FeedbagRespondAuthToClient) and bodies[1].granted == 1


def test_icq_client_without_feedbag_gets_channel_4_auth_messages(
    core: FakeCore, mint: CookieMint
) -> None:
    """Old ICQ clients see auth requests as channel-4 type 6 messages."""
    c = online(core, mint, "123456", feedbag=False)
    c.session.deliver(
        ContactRequest(sender="oscar:654321", recipient="oscar:123456", text="pls"), "654321", NOW
    )
    (body,) = c.replies(c.pump())
    assert isinstance(body, S.IcbmToClient) and body.channel == 4
    block = T.IcqChannel4.decode(find(body.tlvs, 5) or b"")
    assert block.msg_type == T.ICQ_MSG_AUTH_REQUEST and block.fields[-1] == "pls"


# ---------------------------------------------------------------- ICQ family


def meta(uin: int, type_: int, data: bytes = b"") -> S.IcqDbQuery:
    return S.IcqDbQuery(S.IcqMeta(uin, type_, 2, data))


def test_icq_offline_messages_come_through_the_icq_family(core: FakeCore, mint: CookieMint) -> None:
    """Held offline messages are sent as 15/03 0x41 (with their date), then 0x42."""
    sent = datetime(2024, 5, 6, 7, 8, tzinfo=UTC)
    core.offline["oscar:123456"] = [
        (
            Message(sender="oscar:654321", recipient="oscar:123456", body="while away", time=sent),
            "654321",
        )
    ]
    c = online(core, mint, "123456")
    assert not [b for b in c.replies(c.view.events) if isinstance(b, S.IcbmToClient)]
    bodies = c.replies(c.snac(meta(123456, 0x3C)))
    metas = [b.meta for b in bodies if isinstance(b, S.IcqDbReply)]
    assert [m.type for m in metas] == [0x41, 0x42]
    uin, year, month, day, hour, minute = struct.unpack_from("<IHBBBB", metas[0].data)
    assert (uin, year, month, day, hour, minute) == (654321, 2024, 5, 6, 7, 8)
    assert metas[0].data.endswith(b"while away\x00")


def test_unrequested_icq_offline_messages_are_delivered_as_icbms(
    core: FakeCore, mint: CookieMint
) -> None:
    """A client that never asks gets them as 04/07 with a timestamp after the hold."""
    core.offline["oscar:123456"] = [
        (Message(sender="oscar:654321", recipient="oscar:123456", body="late"), "654321")
    ]
    c = online(core, mint, "123456")
    when = c.session.get_timer()
    assert when is not None and when <= NOW + 10
    c.session.handle_timer(NOW + 10)
    (body,) = [b for b in c.replies(c.pump()) if isinstance(b, S.IcbmToClient)]
    assert find(body.tlvs, 0x16) is not None


def test_icq_search_by_uin_finds_the_account(core: FakeCore, mint: CookieMint) -> None:
    """Meta 0x0569 (search by UIN) answers 0x01AE with the user's record."""
    c = online(core, mint, "123456")
    bodies = c.replies(c.snac(meta(123456, 0x07D0, struct.pack("<HI", 0x0569, 654321))))
    (reply,) = bodies
    assert isinstance(reply, S.IcqDbReply) and reply.meta.type == 0x07DA
    subtype, success = struct.unpack_from("<HB", reply.meta.data)
    assert (subtype, success) == (0x01AE, 0x0A)
    assert struct.unpack_from("<I", reply.meta.data, 5)[0] == 654321


def test_icq_search_miss_and_basic_info(core: FakeCore, mint: CookieMint) -> None:
    """An unknown UIN gives a failed 0x01AE; full info gives 0x00C8 then 0x00FA."""
    c = online(core, mint, "123456")
    (miss,) = c.replies(c.snac(meta(123456, 0x07D0, struct.pack("<HI", 0x0569, 999))))
    assert isinstance(miss, S.IcqDbReply) and miss.meta.data == struct.pack("<HB", 0x01AE, 0x32)
    events = c.snac(meta(123456, 0x07D0, struct.pack("<HI", 0x04B2, 654321)))
    snacs = [e.snac for e in events if isinstance(e, SnacEvent)]
    assert [s.flags for s in snacs] == [1, 0]
    assert [struct.unpack_from("<H", s.body.meta.data)[0] for s in snacs] == [0x00C8, 0x00FA]  # type: ignore[attr-defined]


def test_icq_family_refuses_another_uin_and_aim_users(core: FakeCore, mint: CookieMint) -> None:
    """15/02 must name the caller's own UIN."""
    c = online(core, mint, "123456")
    (err,) = c.replies(c.snac(meta(1, 0x3C)))
    assert err == S.SnacError(0x15, S.ERR_REQUEST_DENIED)


# ---------------------------------------------------------------- rates and timers


def test_message_flood_is_warned_limited_then_disconnected(
    core: FakeCore, mint: CookieMint
) -> None:
    """Class 2 (messages): alert (01/0A 2), limit (01/0A 3, dropped), then sign-off."""
    c = online(core, mint, "alice")
    before = len(core.submitted)
    codes: list[int] = []
    for _ in range(40):
        for body in c.replies(
            c.snac(S.IcbmToHost(bytes(8), 1, "bob", (Tlv(2, T.build_fragments("x")),)))
        ):
            if isinstance(body, S.RateParamChange):
                codes.append(body.code)
        if c.session.closed:
            break
    assert codes[:2] == [2, 3]
    assert c.session.closed and "rate limit" in str(c.session.error)
    assert len(core.submitted) - before < 12


def test_rate_limit_clears_after_a_pause(core: FakeCore, mint: CookieMint) -> None:
    """After a pause the level climbs over 'clear' and messages flow again (code 4)."""
    c = online(core, mint, "alice")
    im = S.IcbmToHost(bytes(8), 1, "bob", (Tlv(2, T.build_fragments("x")),))
    while not any(isinstance(b, S.RateParamChange) and b.code == 3 for b in c.replies(c.snac(im))):
        pass
    c.now += 60
    codes = [b.code for b in c.replies(c.snac(im)) if isinstance(b, S.RateParamChange)]
    assert codes == [4]


def test_login_timeout_signs_the_client_off(core: FakeCore, mint: CookieMint) -> None:
    """A client that connects and stalls is dropped at the login deadline."""
    c = Client(core, mint)
    when = c.session.get_timer()
    assert when == NOW + 60
    c.session.handle_timer(when)
    assert c.session.closed and isinstance(c.pump()[-1], Signoff)


def test_keepalive_and_idle_timeout(core: FakeCore, mint: CookieMint) -> None:
    """Online: we send a channel-5 keepalive when quiet; silence past idle closes."""
    c = online(core, mint, "alice")
    when = c.session.get_timer()
    assert when == NOW + 60
    c.session.handle_timer(when)
    assert c.pump()[-1].__class__.__name__ == "Keepalive"
    c.core.run(c.session, c.session.handle_timer(NOW + 300), NOW + 300)
    assert c.session.closed and "no data" in str(c.session.error)
    assert core.closed == ["s1"]


def test_client_signoff_closes_the_core_session(core: FakeCore, mint: CookieMint) -> None:
    """Channel 4 from the client ends the session in the core too."""
    c = online(core, mint, "alice")
    c.send(Signoff())
    assert c.session.closed and c.session.error is None and core.closed == ["s1"]


def test_local_close_says_goodbye(core: FakeCore, mint: CookieMint) -> None:
    """Another login elsewhere: sign-off code 1 and the core session closed."""
    c = online(core, mint, "alice")
    c.core.run(c.session, c.session.close("elsewhere", M.SIGNOFF_OTHER_LOGIN), NOW)
    last = c.pump()[-1]
    assert isinstance(last, Signoff) and find_u16(last.tlvs, 9) == 1
    assert core.closed == ["s1"]


def test_keepalive_flood_reaches_the_disconnect_level(core: FakeCore, mint: CookieMint) -> None:
    """Keepalives pass the rate classes too: a flood of them is signed off (issue 13)."""
    c = online(core, mint, "alice")
    sent = 0
    while not c.session.closed and sent < 2000:
        c.send(Keepalive())
        sent += 1
    assert c.session.closed and "rate limit" in str(c.session.error)
    assert sent < 400


def test_pre_login_key_request_flood_is_signed_off(core: FakeCore, mint: CookieMint) -> None:
    """Before login, repeated 17/06 key requests are counted and cut off, not answered
    without end (issue 13: rate classes cover pre-login frames)."""
    c = Client(core, mint)
    c.send(Signon())
    keys = 0
    for _ in range(2000):
        keys += sum(
            isinstance(b, S.BucpChallengeResponse)
            for b in c.replies(c.snac(S.BucpChallengeRequest((Tlv(1, b"alice"),))))
        )
        if c.session.closed:
            break
    assert c.session.closed and "rate limit" in str(c.session.error)
    assert keys < 400


def test_a_normal_login_and_keepalives_stay_clear_of_the_limit(
    core: FakeCore, mint: CookieMint
) -> None:
    """A client's whole login at one instant, then a keepalive a minute, is never limited."""
    c = online(core, mint, "alice")
    for minute in range(1, 30):
        c.now = NOW + 60 * minute
        c.send(Keepalive())
    assert not c.session.closed
