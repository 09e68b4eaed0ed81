"""Notification and switchboard state machines: vectors, every (state, input) pair, timers."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.msn import lists, session
from adapters.msn.codec import Command, CommandCodec, ErrorReply, Role
from adapters.msn.session import (
    CHALLENGE_TIMEOUT,
    LOGIN_TIMEOUT,
    NS_TRANSITIONS,
    RNG_PURPOSE,
    TICKET_PURPOSE,
    XFR_PURPOSE,
    AnswerRing,
    ChangePresence,
    CheckPassword,
    Close,
    EditLists,
    GoOnline,
    Invite,
    LoadAccount,
    NotificationSession,
    NsConfig,
    NsState,
    OpenRoom,
    Post,
    SbState,
    Send,
    SwitchboardSession,
    SyncLists,
)
from adapters.msn.tokens import TokenSigner
from schema.events import PresenceState
from tests.msn.msn_fakes import client_bytes, load_vector

SIGNER = TokenSigner(b"s" * 32)
CONFIG = NsConfig(signer=SIGNER, switchboard_address="127.0.0.1:1864")


def sent(actions: list[object]) -> list[object]:
    return [a.frame for a in actions if isinstance(a, Send)]


def parse(line: str) -> Command:
    (frame,) = CommandCodec(Role.SERVER).receive_data(line.encode() + b"\r\n")
    assert isinstance(frame, Command)
    return frame


def logged_in(version: int = 8, now: float = 1000.0) -> NotificationSession:
    ns = NotificationSession(CONFIG, now)
    ns.receive(parse(f"VER 0 MSNP{version} CVR0"), now)
    if version >= 8:
        ns.receive(parse("USR 1 TWN I test1@example.com"), now)
        ticket = SIGNER.issue(TICKET_PURPOSE, "msn:test1@example.com", now, 60)
        ns.receive(parse(f"USR 2 TWN S t={ticket}&p=x"), now)
    else:
        ns.receive(parse("USR 1 MD5 I test1@example.com"), now)
        ns.receive(parse("USR 2 MD5 S " + "0" * 32), now)
    ns.login_accepted("Test One", now)
    return ns


def test_msnp8_capture_replayed() -> None:
    """msnp.py's NS lines, with a ticket we issued, log in, sync, answer CHL and get XFR SB."""
    now = 1000.0
    ns = NotificationSession(CONFIG, now)
    lines = [
        x for x in load_vector("msnp8-msnp.py-session.txt") if x.side == "C" and x.channel == "NS"
    ]
    out: list[object] = []
    seen_chl = None
    for line in lines[:8]:  # one session (the capture holds two)
        data = client_bytes(line, b"\n" if line.text.startswith("QRY") else b"\r\n")
        if line.text.startswith("USR 3 TWN S"):
            ticket = SIGNER.issue(TICKET_PURPOSE, "msn:test1@example.com", now, 60)
            data = f"USR 3 TWN S t={ticket}&p=fakeprofile\r\n".encode()
        if line.text.startswith("QRY") and seen_chl is not None:
            answer = hashlib.md5((seen_chl + "Q1P7W2E4J9R8U3S5").encode()).hexdigest().encode()
            data = b"QRY 6 msmsgs@msnmsgr.com 32\n" + answer
        for frame in CommandCodec(Role.SERVER).receive_data(data):
            actions = ns.receive(frame, now)
            out += actions
            for action in actions:
                if isinstance(action, LoadAccount):
                    out += ns.login_accepted("Test One", now)
                if (
                    isinstance(action, Send)
                    and isinstance(action.frame, Command)
                    and action.frame.verb == "CHL"
                ):
                    seen_chl = action.frame.args[0]
    frames = [f for f in sent(out) if isinstance(f, Command)]
    verbs = [f.verb for f in frames]
    assert verbs == ["VER", "CVR", "USR", "USR", "MSG", "CHG", "CHL", "QRY", "XFR"]
    assert frames[0] == Command("VER", 0, ("MSNP8", "CVR0"))
    assert frames[2] == Command(
        "USR",
        2,
        (
            "TWN",
            "S",
            "lc=1033,id=507,tw=40,fs=1,ru=http%3A%2F%2Fmessenger%2Emsn%2Ecom,ct=1062764229,kpp=1,kv=5,ver=2.1.0173.1,tpf=43f8a4c8ed940c04e3740be46c4d1619",
        ),
    )
    assert frames[3] == Command("USR", 3, ("OK", "test1@example.com", "Test%20One", "1", "0"))
    assert frames[5] == Command("CHG", 4, ("NLN",))
    assert frames[7] == Command("QRY", 6)
    assert frames[8].args[:3] == ("SB", "127.0.0.1:1864", "CKI")
    assert any(isinstance(a, SyncLists) and a.trid == 5 for a in out)
    assert any(isinstance(a, GoOnline) and a.presence is PresenceState.ONLINE for a in out)
    assert ns.state is NsState.ONLINE


def test_captured_fake_ticket_is_refused() -> None:
    """The stand-in's 't=faketicket' is not a ticket we signed: 911 and close."""
    ns = NotificationSession(CONFIG, 0.0)
    ns.receive(parse("VER 0 MSNP8 CVR0"), 0.0)
    ns.receive(parse("USR 2 TWN I test1@example.com"), 0.0)
    actions = ns.receive(parse("USR 3 TWN S t=faketicket&p=fakeprofile"), 0.0)
    assert sent(actions) == [ErrorReply(911, 3)]
    assert isinstance(actions[-1], Close) and ns.state is NsState.CLOSED


def test_ticket_for_another_user_is_refused() -> None:
    """A valid ticket naming somebody else does not log this handle in."""
    ns = NotificationSession(CONFIG, 0.0)
    ns.receive(parse("VER 0 MSNP8"), 0.0)
    ns.receive(parse("USR 2 TWN I test1@example.com"), 0.0)
    ticket = SIGNER.issue(TICKET_PURPOSE, "msn:other@example.com", 0.0, 60)
    assert sent(ns.receive(parse(f"USR 3 TWN S t={ticket}&p="), 0.0)) == [ErrorReply(911, 3)]


def test_msnp12_pecan_opening() -> None:
    """msn-pecan's VER 1 MSNP12 (no CVR0), CVR and USR TWN I; it then sends OUT."""
    ns = NotificationSession(CONFIG, 0.0)
    out: list[object] = []
    for line in load_vector("msnp12-msn-pecan-login.txt"):
        if line.side == "C":
            out += ns.receive(parse(line.text), 0.0)
    frames = sent(out)
    assert frames[0] == Command("VER", 1, ("MSNP12",))
    assert frames[1] == Command(
        "CVR",
        2,
        (
            "6.0.0602",
            "6.0.0602",
            "6.0.0602",
            "http://messenger.msn.com",
            "http://messenger.msn.com",
        ),
    )
    assert isinstance(frames[2], Command) and frames[2].args[:2] == ("TWN", "S")
    assert isinstance(out[-1], Close) and ns.state is NsState.CLOSED


def test_md5_login_msnp2() -> None:
    """MSNP2 (the IETF draft's login): INF, USR MD5 I -> salt, USR MD5 S digest -> CheckPassword."""
    ns = NotificationSession(CONFIG, 5.0)
    assert sent(ns.receive(parse("VER 1 MSNP2"), 5.0)) == [Command("VER", 1, ("MSNP2",))]
    assert sent(ns.receive(parse("INF 2"), 5.0)) == [Command("INF", 2, ("MD5",))]
    (salt_reply,) = sent(ns.receive(parse("USR 3 MD5 I example@passport.com"), 5.0))
    assert isinstance(salt_reply, Command) and salt_reply.args[:2] == ("MD5", "S")
    salt = salt_reply.args[2]
    digest = hashlib.md5((salt + "password").encode()).hexdigest()
    (check,) = ns.receive(parse(f"USR 4 MD5 S {digest}"), 5.0)
    assert isinstance(check, CheckPassword)
    assert check.address == "msn:example@passport.com"
    assert (check.proof.salt, check.proof.digest_hex) == (salt, digest)
    frames = sent(ns.login_accepted("Example Name", 5.0))
    assert frames[0] == Command("USR", 4, ("OK", "example@passport.com", "Example%20Name"))


def test_md5_refused_from_msnp8_and_twn_before() -> None:
    """MD5 is for MSNP2-7 and TWN for MSNP8+: the other gets 502."""
    ns = NotificationSession(CONFIG, 0.0)
    ns.receive(parse("VER 1 MSNP8"), 0.0)
    assert sent(ns.receive(parse("USR 2 MD5 I a@b.com"), 0.0)) == [ErrorReply(502, 2)]
    old = NotificationSession(CONFIG, 0.0)
    old.receive(parse("VER 1 MSNP7"), 0.0)
    assert sent(old.receive(parse("USR 2 TWN I a@b.com"), 0.0)) == [ErrorReply(502, 2)]


def test_highest_common_version_and_no_common_version() -> None:
    """VER picks the highest common version; offering only MSNP13+ gets VER 0 and a close."""
    ns = NotificationSession(CONFIG, 0.0)
    assert sent(ns.receive(parse("VER 1 MSNP18 MSNP12 MSNP11 CVR0"), 0.0)) == [
        Command("VER", 1, ("MSNP12", "CVR0"))
    ]
    ns = NotificationSession(CONFIG, 0.0)
    actions = ns.receive(parse("VER 1 MSNP18 CVR0"), 0.0)
    assert sent(actions) == [Command("VER", 1, ("0",))] and isinstance(actions[-1], Close)


def test_refused_login_is_911_and_close() -> None:
    """A refused password gives 911 on the USR's trid and closes."""
    ns = NotificationSession(CONFIG, 0.0)
    ns.receive(parse("VER 1 MSNP7"), 0.0)
    ns.receive(parse("USR 2 MD5 I a@b.com"), 0.0)
    ns.receive(parse("USR 3 MD5 S " + "1" * 32), 0.0)
    actions = ns.login_refused(0.0)
    assert sent(actions) == [ErrorReply(911, 3)] and isinstance(actions[-1], Close)


def test_wrong_challenge_answer_is_540() -> None:
    """A wrong QRY closes the connection with 540."""
    ns = logged_in()
    ns.receive(parse("CHG 3 NLN 0"), 1000.0)
    (frame,) = CommandCodec(Role.SERVER).receive_data(
        b"QRY 4 msmsgs@msnmsgr.com 32\r\n" + b"0" * 32
    )
    actions = ns.receive(frame, 1000.0)
    assert sent(actions) == [ErrorReply(540, 4)] and ns.state is NsState.CLOSED


def test_msnp11_client_answers_with_the_new_hash() -> None:
    """An MSNP11 client's QRY with PROD0090YUAUV{2B is checked with the MSNP11 hash."""
    from adapters.msn.challenge import msnp11_answer

    ns = logged_in(11)
    actions = ns.receive(parse("CHG 3 NLN 0"), 1000.0)
    chl = next(f for f in sent(actions) if isinstance(f, Command) and f.verb == "CHL")
    answer = msnp11_answer(chl.args[0], "PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL").encode()
    (frame,) = CommandCodec(Role.SERVER).receive_data(b"QRY 4 PROD0090YUAUV{2B 32\r\n" + answer)
    assert sent(ns.receive(frame, 1000.0)) == [Command("QRY", 4)]


def test_unanswered_challenge_times_out() -> None:
    """No QRY within the limit: 540 and close."""
    ns = logged_in()
    ns.receive(parse("CHG 3 NLN 0"), 1000.0)
    assert ns.get_timer() == 1000.0 + CHALLENGE_TIMEOUT
    actions = ns.handle_timer(1000.0 + CHALLENGE_TIMEOUT)
    assert sent(actions) == [ErrorReply(540, None)] and ns.state is NsState.CLOSED


def test_login_timeout() -> None:
    """A client that never logs in is closed after the login timeout."""
    ns = NotificationSession(CONFIG, 0.0)
    assert ns.get_timer() == LOGIN_TIMEOUT
    assert ns.handle_timer(LOGIN_TIMEOUT - 1) == []
    assert isinstance(ns.handle_timer(LOGIN_TIMEOUT)[-1], Close)


def test_xfr_needs_a_visible_online_user() -> None:
    """XFR SB before CHG or while hidden is 913; once online it hands out a signed cookie."""
    ns = logged_in()
    assert sent(ns.receive(parse("XFR 3 SB"), 1000.0)) == [ErrorReply(913, 3)]
    ns.receive(parse("CHG 4 HDN"), 1000.0)
    assert sent(ns.receive(parse("XFR 5 SB"), 1000.0)) == [ErrorReply(913, 5)]
    ns.receive(parse("CHG 6 NLN"), 1000.0)
    (xfr,) = sent(ns.receive(parse("XFR 7 SB"), 1000.0))
    assert isinstance(xfr, Command)
    claims = SIGNER.check(xfr.args[3], XFR_PURPOSE, 1001.0)
    assert claims is not None and claims.subject == "test1@example.com"


def test_presence_changes_and_psm() -> None:
    """Later CHGs change presence; UUX (MSNP11+) carries the personal message."""
    ns = logged_in(11)
    ns.receive(parse("CHG 3 NLN 0"), 1000.0)
    assert ChangePresence(PresenceState.AWAY, "") in ns.receive(parse("CHG 4 AWY 0"), 1000.0)
    psm = b"<Data><PSM>a &amp; b</PSM><CurrentMedia></CurrentMedia></Data>"
    (frame,) = CommandCodec(Role.SERVER).receive_data(b"UUX 5 %d\r\n" % len(psm) + psm)
    actions = ns.receive(frame, 1000.0)
    assert ChangePresence(PresenceState.AWAY, "a & b") in actions
    assert sent(actions) == [Command("UUX", 5, (), b"")]


def test_list_commands_become_edits() -> None:
    """ADD (MSNP<=9) and ADC (MSNP10+) become list edits; the other is disabled."""
    ns = logged_in(8)
    (edit,) = ns.receive(parse("ADD 3 FL bob@example.com Bob 0"), 1000.0)
    assert edit == EditLists(3, lists.AddToList("FL", "bob@example.com", "Bob", "0"))
    assert sent(ns.receive(parse("ADC 4 FL N=bob@example.com"), 1000.0)) == [ErrorReply(502, 4)]
    ns10 = logged_in(10)
    (edit,) = ns10.receive(parse("ADC 3 FL N=bob@example.com F=Bob"), 1000.0)
    assert edit == EditLists(3, lists.AddToList("FL", "bob@example.com", "Bob", None))
    assert sent(ns10.receive(parse("ADD 4 FL bob@example.com Bob"), 1000.0)) == [ErrorReply(502, 4)]


# ---- every (state, input) pair

INPUT_LINES = {
    "VER": "VER 9 MSNP8",
    "CVR": "CVR 9 0x0409 win 4.10 i386 MSNMSGR 5.0.0544 MSMSGS a@b.com",
    "INF": "INF 9",
    "USR MD5 I": "USR 9 MD5 I a@b.com",
    "USR MD5 S": "USR 9 MD5 S " + "0" * 32,
    "USR TWN I": "USR 9 TWN I a@b.com",
    "USR TWN S": "USR 9 TWN S t=x&p=y",
    "CHG": "CHG 9 NLN",
    "SYN": "SYN 9 0",
    "GTC": "GTC 9 N",
    "BLP": "BLP 9 BL",
    "ADD": "ADD 9 AL c@d.com c@d.com",
    "ADC": "ADC 9 AL N=c@d.com",
    "REM": "REM 9 AL c@d.com",
    "ADG": "ADG 9 Friends 0",
    "RMG": "RMG 9 5",
    "REG": "REG 9 5 New 0",
    "REA": "REA 9 a@b.com Me",
    "PRP": "PRP 9 MFN Me",
    "XFR": "XFR 9 SB",
    "PNG": "PNG",
    "OUT": "OUT",
    "CAL": "CAL 9 a@b.com",
    "ANS": "ANS 9 a@b.com c 1",
}
PRE_STATES = [NsState.CONNECTED, NsState.VERSIONED, NsState.AUTHENTICATED, NsState.ONLINE]


def at_state(state: NsState) -> NotificationSession:
    if state is NsState.CONNECTED:
        return NotificationSession(CONFIG, 1000.0)
    if state is NsState.VERSIONED:
        ns = NotificationSession(CONFIG, 1000.0)
        ns.receive(parse("VER 0 MSNP8"), 1000.0)
        return ns
    ns = logged_in(8)
    if state is NsState.ONLINE:
        ns.receive(parse("CHG 3 NLN"), 1000.0)
    return ns


@settings(max_examples=120)
@given(st.sampled_from(PRE_STATES), st.sampled_from(sorted(INPUT_LINES)))
def test_every_state_input_pair(state: NsState, key: str) -> None:
    """Pairs in the table are handled; any other pair is an error reply and a close."""
    ns = at_state(state)
    actions = ns.receive(parse(INPUT_LINES[key]), 1000.0)
    if (state, key) in NS_TRANSITIONS:
        assert not (
            ns.state is NsState.CLOSED
            and key != "OUT"
            and any(isinstance(f, ErrorReply) and f.code in (200, 715) for f in sent(actions))
        )
    else:
        assert ns.state is NsState.CLOSED
        assert isinstance(actions[-1], Close)
        assert any(isinstance(f, ErrorReply) for f in sent(actions))


def test_unsupported_known_commands_get_502_online() -> None:
    """Commands we know but do not implement (FND, MSNP13's ADL...) answer 502 and keep the session."""
    ns = logged_in()
    assert sent(ns.receive(parse("FND 3 fname=a lname=b"), 1000.0)) == [ErrorReply(502, 3)]
    assert ns.state is NsState.AUTHENTICATED


CLIENT_COMMANDS = [
    # (version, client line, the real server's answer) — docs/protocols/msn.md, command table
    (12, "SBP 3 537d4410-5066-567d-b08d-885c70cb50c8 MFN gateway@gateway.invalid",
     Command("SBP", 3, ("537d4410-5066-567d-b08d-885c70cb50c8", "MFN", "gateway@gateway.invalid"))),
    (11, "SBP 3 c1f9a363-4ee9-4a33-a434-b056a4c55b98 PHM tel:+15554444333 1",
     Command("SBP", 3, ("c1f9a363-4ee9-4a33-a434-b056a4c55b98", "PHM", "tel:+15554444333", "1"))),
    (10, "SBP 3 bob@example.com MFN Bob", Command("SBP", 3, ("bob@example.com", "MFN", "Bob"))),
    (12, "SBS 3 null", Command("SBS", 3, ("null",))),
    (8, "URL 3 INBOX", Command("URL", 3, ("/", "about:blank", "2"))),
    (12, "URL 3 PROFILE 0x0409", Command("URL", 3, ("/", "about:blank", "2"))),
    (8, "SND 3 x@example.org 0x0409 MSMSGS MSMSGS", Command("SND", 3, ("OK",))),
    (8, "IMS 3 OFF", Command("IMS", 3, ("0", "OFF"))),
    (11, "GCF 3 Shields.xml", Command("GCF", 3, ("Shields.xml",), session.SHIELDS_XML)),
    (8, "PRP 3 PHH 555%20123", Command("PRP", 3, ("1", "PHH", "555%20123"))),
    (12, "PRP 3 PHM", Command("PRP", 3, ("PHM",))),
    (12, "PRP 3 MFN New%20Name", Command("PRP", 3, ("MFN", "New%20Name"))),
]  # fmt: skip


@pytest.mark.parametrize(("version", "line", "answer"), CLIENT_COMMANDS)
def test_commands_real_clients_send_are_answered_and_keep_the_session(
    version: int, line: str, answer: Command
) -> None:
    """What MSNP8-12 clients send in normal use gets the real server's answer, never an error."""
    ns = logged_in(version)
    ns.receive(parse("CHG 2 NLN 0"), 1000.0)
    assert sent(ns.receive(parse(line), 1000.0)) == [answer]
    assert ns.state is NsState.ONLINE


def test_sdc_with_its_note_is_answered_ok() -> None:
    """SDC carries a payload (the invitation's note): the codec reads it, the answer is OK."""
    ns = logged_in(9)
    (frame,) = CommandCodec(Role.SERVER).receive_data(
        b"SDC 3 x@example.org 0x0409 MSMSGS WindowsMessenger X X Test%20One 8\r\nHi Mike!"
    )
    assert sent(ns.receive(frame, 1000.0)) == [Command("SDC", 3, ("OK",))]


def test_sbp_and_prp_are_kept_for_the_next_sync() -> None:
    """SBP, PRP and REA of a contact ask the glue to store what they carry; IMS OFF
    stops rings to this user."""
    ns = logged_in(12)
    actions = ns.receive(parse("SBP 3 537d4410-5066-567d-b08d-885c70cb50c8 PHM 555 1"), 1000.0)
    assert session.PropertyChanged("537d4410-5066-567d-b08d-885c70cb50c8", "PHM", "555") in actions
    actions = ns.receive(parse("PRP 4 PHH"), 1000.0)
    assert session.PropertyChanged(None, "PHH", None) in actions
    ns.receive(parse("IMS 5 OFF"), 1000.0)
    assert ns.accepts_switchboards is False
    old = logged_in(9)
    actions = old.receive(parse("REA 3 bob@example.com Bobby"), 1000.0)
    assert session.PropertyChanged("bob@example.com", "MFN", "Bobby") in actions


def test_sbp_before_msnp10_and_unknown_properties_are_refused_without_closing() -> None:
    """SBP is MSNP10+ (502 below); an unknown PRP/SBP property is 201; the session stays."""
    old = logged_in(9)
    assert sent(old.receive(parse("SBP 3 bob@example.com MFN Bob"), 1000.0)) == [ErrorReply(502, 3)]
    new = logged_in(12)
    assert sent(new.receive(parse("SBP 3 bob@example.com XYZ 1"), 1000.0)) == [ErrorReply(201, 3)]
    assert sent(new.receive(parse("PRP 4 XYZ 1"), 1000.0)) == [ErrorReply(201, 4)]
    assert old.state is new.state is NsState.AUTHENTICATED


# ---- switchboard session


def test_switchboard_usr_with_a_valid_cookie_opens_a_room() -> None:
    """USR handle cookie from XFR opens a room for that handle; a bad cookie is 911."""
    sb = SwitchboardSession(SIGNER, 0.0)
    cookie = SIGNER.issue(XFR_PURPOSE, "test1@example.com", 0.0, 60, "Test%20One")
    assert sb.receive(parse(f"USR 1 test1@example.com {cookie}"), 0.0) == [
        OpenRoom(1, "test1@example.com", "Test One")
    ]
    bad = SwitchboardSession(SIGNER, 0.0)
    assert sent(bad.receive(parse("USR 1 test1@example.com 17262740.1050826919.32308"), 0.0)) == [
        ErrorReply(911, 1)
    ]


def test_switchboard_answer_needs_the_matching_session() -> None:
    """ANS with an RNG cookie joins only the session the cookie names."""
    cookie = SIGNER.issue(RNG_PURPOSE, "b@c.com", 0.0, 60, "123 B")
    sb = SwitchboardSession(SIGNER, 0.0)
    assert sb.receive(parse(f"ANS 1 b@c.com {cookie} 123"), 0.0) == [
        AnswerRing(1, "b@c.com", "B", "123")
    ]
    other = SwitchboardSession(SIGNER, 0.0)
    assert sent(other.receive(parse(f"ANS 1 b@c.com {cookie} 999"), 0.0)) == [ErrorReply(911, 1)]


def test_switchboard_commands_in_a_room() -> None:
    """In a room: CAL invites, MSG posts with its ack type, a bad ack type closes."""
    sb = SwitchboardSession(SIGNER, 0.0)
    cookie = SIGNER.issue(XFR_PURPOSE, "a@b.com", 0.0, 60, "A")
    sb.receive(parse(f"USR 1 a@b.com {cookie}"), 0.0)
    sb.joined("42")
    assert sb.receive(parse("CAL 2 c@d.com"), 0.0) == [Invite(2, "c@d.com")]
    (frame,) = CommandCodec(Role.SERVER).receive_data(b"MSG 3 A 5\r\nhello")
    assert sb.receive(frame, 0.0) == [Post(3, "A", b"hello")]
    (frame,) = CommandCodec(Role.SERVER).receive_data(b"MSG 4 X 0\r\n")
    actions = sb.receive(frame, 0.0)
    assert isinstance(actions[-1], Close) and sb.state is SbState.CLOSED


def test_switchboard_msg_before_joining_is_not_expected() -> None:
    """MSG before USR/ANS is 715 and a close."""
    sb = SwitchboardSession(SIGNER, 0.0)
    (frame,) = CommandCodec(Role.SERVER).receive_data(b"MSG 1 N 0\r\n")
    assert sent(sb.receive(frame, 0.0)) == [ErrorReply(715, 1)]


@pytest.mark.parametrize("verb_line", ["VER 1 MSNP8", "XFR 1 SB", "CHG 1 NLN"])
def test_notification_commands_on_a_switchboard_close_it(verb_line: str) -> None:
    """Notification-server commands have no place on a switchboard."""
    sb = SwitchboardSession(SIGNER, 0.0)
    actions = sb.receive(parse(verb_line), 0.0)
    assert isinstance(actions[-1], Close)
