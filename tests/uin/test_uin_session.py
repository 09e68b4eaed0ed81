"""Server session state machine: every (state, input) pair, login, keys, timers."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.uin import crypto
from adapters.uin.codec import (
    Charset,
    ContactListGet,
    Datagram,
    ErrorCode,
    Goodbye,
    Hello,
    Login,
    LoginOk,
    Logout,
    MessageFragment,
    Ping,
    PresenceNotice,
    Refused,
    Status,
    UinProtocolError,
    decode,
    encode,
)
from adapters.uin.session import (
    HANDSHAKE_TIMEOUT,
    TRANSITIONS,
    CommandReceived,
    Input,
    LoginAttempted,
    ServerSession,
    SessionEnded,
    State,
)
from schema import scram

UIN = 700123
SID = 0xABCDEF0123456789
NONCE_C = b"c" * 24
NONCE_S = b"s" * 24
SALT = b"salt-salt-salt-1"
PASSWORD = "비밀번호"
HELLO = Hello(0, Status.ONLINE, NONCE_C)
T0 = 1000.0


def _auth_message() -> bytes:
    binding = crypto.channel_binding(SID, Charset.CP949, Status.ONLINE, 0)
    return crypto.auth_message(UIN, NONCE_C, NONCE_S, SALT, 4096, binding)


def _proof() -> bytes:
    return scram.client_proof(PASSWORD, SALT, 4096, _auth_message())


def _signature() -> bytes:
    return scram.expected_server_signature(PASSWORD, SALT, 4096, _auth_message())


KEYS = crypto.session_keys(_signature())
LOGIN = encode(Datagram(Login(_proof()), SID, UIN))


def _client(body: object, seq: int, ack: int = 0) -> bytes:
    return encode(Datagram(body, SID, UIN, seq, ack), KEYS[0])  # type: ignore[arg-type]


def new_session() -> ServerSession:
    return ServerSession(session_id=SID, hello=HELLO, uin=UIN, now=T0, charset=Charset.CP949)


def in_state(state: State) -> ServerSession:
    """A session driven through its real API into ``state``."""
    s = new_session()
    if state is State.NEW:
        return s
    s.parameters(SALT, 4096, NONCE_S, T0)
    if state is State.CHALLENGED:
        return s
    s.receive(LOGIN, T0)
    if state is State.VERIFYING:
        return s
    s.login_accepted(_signature(), T0)
    if state is State.OPENING:
        return s
    if state is State.CLOSED:
        s.close(ErrorCode.SERVER_SHUTDOWN)
        return s
    s.opened()
    assert state is State.ONLINE
    return s


DRIVERS: dict[Input, Callable[[ServerSession], object]] = {
    Input.PARAMETERS: lambda s: s.parameters(SALT, 4096, NONCE_S, T0),
    Input.HELLO: lambda s: s.hello_repeated(),
    Input.LOGIN: lambda s: s.receive(LOGIN, T0),
    Input.LOGIN_ACCEPTED: lambda s: s.login_accepted(_signature(), T0),
    Input.LOGIN_REJECTED: lambda s: s.login_rejected(),
    Input.OPENED: lambda s: s.opened(),
    Input.DATAGRAM: lambda s: s.receive(_client(ContactListGet(), 1), T0),
    Input.LOGOUT: lambda s: s.receive(_client(Logout(), 1), T0),
    Input.TIMER: lambda s: s.handle_timer(T0 + 0.01),
    Input.EXPIRED: lambda s: s.handle_timer(T0 + 10_000),
    Input.CLOSE: lambda s: s.close(ErrorCode.SERVER_SHUTDOWN),
}
PAIRS = list(itertools.product(State, Input))


def _check_pair(state: State, what: Input) -> None:
    session = in_state(state)
    expected = TRANSITIONS.get((state, what))
    if expected is None:
        with pytest.raises(UinProtocolError):
            DRIVERS[what](session)
        assert session.state is state
    else:
        DRIVERS[what](session)
        assert session.state is expected


@pytest.mark.parametrize(("state", "what"), PAIRS, ids=[f"{s.name}-{i.name}" for s, i in PAIRS])
def test_every_state_input_pair_follows_the_table(state: State, what: Input) -> None:
    """Each (state, input) goes where the table says; a missing pair is a protocol error."""
    _check_pair(state, what)


@settings(max_examples=60)
@given(st.sampled_from(State), st.sampled_from(Input))
def test_state_input_pairs_sampled(state: State, what: Input) -> None:
    """Hypothesis samples (state, input) pairs: the table is the only behaviour."""
    _check_pair(state, what)


def test_login_produces_proof_over_the_documented_auth_message() -> None:
    """The session asks the core to check exactly RFC 5802's AuthMessage with our binding."""
    s = in_state(State.CHALLENGED)
    (event,) = s.receive(LOGIN, T0)
    assert event == LoginAttempted(_auth_message(), _proof())
    assert _auth_message().startswith(f"n={UIN},r=".encode())
    verifier = scram.make_verifier(PASSWORD, SALT, 4096)
    assert scram.verify_proof(verifier, event.auth_message, event.proof)


def test_challenge_is_sent_and_repeated_for_a_repeated_hello() -> None:
    """CHALLENGE goes out once on parameters and again for each repeated HELLO."""
    s = new_session()
    s.parameters(SALT, 4096, NONCE_S, T0)
    (first,) = s.datagrams_to_send(T0)
    s.hello_repeated()
    assert s.datagrams_to_send(T0) == [first]
    assert decode(first).session_id == SID


def test_login_ok_is_authenticated_under_the_server_key_and_repeated_for_repeated_login() -> None:
    """LOGIN_OK verifies under K_s2c; a repeated identical LOGIN gets it again."""
    s = in_state(State.OPENING)
    sent = s.datagrams_to_send(T0)
    ok = decode(sent[-1], KEYS[1])
    assert isinstance(ok.body, LoginOk)
    s.receive(LOGIN, T0)
    again = s.datagrams_to_send(T0)
    assert isinstance(decode(again[0], KEYS[1]).body, LoginOk)


def test_rejected_login_sends_refused_and_ends() -> None:
    """A refused proof answers REFUSED(LOGIN_FAILED) and ends the session."""
    s = in_state(State.VERIFYING)
    s.datagrams_to_send(T0)
    assert s.login_rejected() == [SessionEnded(ErrorCode.LOGIN_FAILED)]
    (data,) = s.datagrams_to_send(T0)
    assert decode(data).body == Refused(ErrorCode.LOGIN_FAILED)


def test_commands_during_opening_are_held_then_released_in_order() -> None:
    """Commands that arrive while the core opens the session come out after OPENED."""
    s = in_state(State.OPENING)
    assert s.receive(_client(ContactListGet(), 1), T0) == []
    assert s.receive(_client(Ping(), 2), T0) == []
    assert s.opened() == [CommandReceived(ContactListGet(), 1)]


def test_a_datagram_under_a_wrong_key_is_dropped_without_effect() -> None:
    """A datagram MACed with another key raises (dropped) and changes nothing."""
    s = in_state(State.ONLINE)
    forged = encode(Datagram(ContactListGet(), SID, UIN, 1, 0), b"x" * 32)
    with pytest.raises(UinProtocolError):
        s.receive(forged, T0)
    assert s.state is State.ONLINE


def test_unauthenticated_command_after_login_is_dropped() -> None:
    """A CRC-only command after login is refused without closing the session."""
    s = in_state(State.ONLINE)
    with pytest.raises(UinProtocolError):
        s.receive(encode(Datagram(ContactListGet(), SID, UIN, 1, 0)), T0)
    assert s.state is State.ONLINE


def test_server_command_from_the_client_ends_the_session_with_protocol_error() -> None:
    """An authenticated datagram in the wrong direction closes with GOODBYE(PROTOCOL_ERROR)."""
    s = in_state(State.ONLINE)
    events = s.receive(_client(PresenceNotice(1, Status.AWAY), 1), T0)
    assert events == [SessionEnded(ErrorCode.PROTOCOL_ERROR)]
    assert decode(s.datagrams_to_send(T0)[-1], KEYS[1]).body == Goodbye(ErrorCode.PROTOCOL_ERROR)


def test_logout_is_acked_then_the_session_ends() -> None:
    """LOGOUT ends the session after its ack is queued."""
    s = in_state(State.ONLINE)
    s.datagrams_to_send(T0)
    assert s.receive(_client(Logout(), 1), T0) == [SessionEnded(ErrorCode.LOGGED_OUT)]
    acks = [decode(d, KEYS[1]) for d in s.datagrams_to_send(T0)]
    assert any(d.ack == 1 for d in acks)


def test_handshake_expires_after_thirty_seconds() -> None:
    """A login that does not finish in 30 s ends with TIMEOUT."""
    s = in_state(State.CHALLENGED)
    assert s.get_timer() == T0 + HANDSHAKE_TIMEOUT
    assert s.handle_timer(T0 + 29) == []
    assert s.handle_timer(T0 + HANDSHAKE_TIMEOUT) == [SessionEnded(ErrorCode.TIMEOUT)]


def test_silent_client_times_out_with_goodbye() -> None:
    """Nothing heard for the idle timeout: GOODBYE(TIMEOUT) and the session ends."""
    s = in_state(State.ONLINE)
    s.datagrams_to_send(T0)
    assert s.handle_timer(T0 + 121) == [SessionEnded(ErrorCode.TIMEOUT)]
    assert decode(s.datagrams_to_send(T0)[-1], KEYS[1]).body == Goodbye(ErrorCode.TIMEOUT)


def test_send_is_refused_outside_opening_and_online() -> None:
    """Queuing to a session that is not logged in reports False."""
    assert not in_state(State.CHALLENGED).send(ContactListGet())
    message = MessageFragment(1, 1, 0, 0, Charset.CP949, 0, 1, b"x")
    assert in_state(State.ONLINE).send(message)
    assert not in_state(State.CLOSED).send(message)
