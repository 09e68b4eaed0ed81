"""Addresses: ``network:native-id``, the one way the whole gateway names a user.

A native id is normalised per network so that two spellings of the same user compare
equal: AIM screen names are case- and space-insensitive, MSN handles are e-mail
addresses (case-insensitive), ICQ and UIN numbers are decimal without leading zeros.
A network that is not known here keeps its ids as given (stripped); an adapter of a
new network may register its own normaliser with :func:`register_normaliser`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, NewType

from pydantic import AfterValidator

from schema.limits import MAX_HANDLE_CHARS, control_character, shown

Network = NewType("Network", str)

_NETWORK_RE = re.compile(r"^[a-z][a-z0-9_-]{0,15}$")
_MAX_NATIVE = MAX_HANDLE_CHARS


class AddressError(ValueError):
    """An address or native id that cannot name a user."""


def _normalise_oscar(native: str) -> str:
    squeezed = native.replace(" ", "").lower()
    if squeezed.isdigit():
        return str(int(squeezed))
    if not re.fullmatch(r"[a-z][a-z0-9@._-]{1,47}", squeezed):
        raise AddressError(f"not an ICQ number or AIM screen name: {shown(native)}")
    return squeezed


def _normalise_msn(native: str) -> str:
    handle = native.strip().lower()
    if not re.fullmatch(r"[a-z0-9._%+-]{1,64}@[a-z0-9.-]{1,190}\.[a-z]{2,24}", handle):
        raise AddressError(f"not an MSN handle: {shown(native)}")
    return handle


def _normalise_uin(native: str) -> str:
    digits = native.strip()
    if not digits.isdigit() or not 1 <= int(digits) <= 0xFFFFFFFF:
        raise AddressError(f"not a UIN: {shown(native)}")
    return str(int(digits))


_NORMALISERS: dict[str, Callable[[str], str]] = {
    "oscar": _normalise_oscar,
    "msn": _normalise_msn,
    "uin": _normalise_uin,
}


def register_normaliser(network: str, normaliser: Callable[[str], str]) -> None:
    """Let a network shipped as its own package say how its ids compare."""
    check_network(network)
    _NORMALISERS[network] = normaliser
    _normalised.clear()


_good_networks: set[str] = set()
_normalised: dict[tuple[str, str], str] = {}
"""Answers already given (every message carries two addresses; the same few repeat)."""
_NORMALISED_MAX = 100_000


def check_network(network: str) -> Network:
    if network in _good_networks:
        return Network(network)
    if not _NETWORK_RE.fullmatch(network):
        raise AddressError(f"not a network name: {shown(network)}")
    if len(_good_networks) < 1024:
        _good_networks.add(network)
    return Network(network)


def normalise_native(network: str, native: str) -> str:
    """The canonical spelling of ``native`` in ``network``; raises AddressError."""
    known = _normalised.get((network, native))
    if known is not None:
        return known
    result = _normalise_native(network, native)
    if len(_normalised) >= _NORMALISED_MAX:
        _normalised.clear()
    _normalised[(network, native)] = result
    return result


def _normalise_native(network: str, native: str) -> str:
    check_network(network)
    if not native:
        raise AddressError("empty native id")
    if len(native) > _MAX_NATIVE:
        raise AddressError(
            f"not a native id: longer than {_MAX_NATIVE} characters: {shown(native)}"
        )
    if control_character(native) is not None:
        raise AddressError(f"not a native id: has a control character: {shown(native)}")
    normaliser = _NORMALISERS.get(network)
    if normaliser is None:
        stripped = native.strip()
        if not stripped:
            raise AddressError("empty native id")
        return stripped
    return normaliser(native)


def make_address(network: str, native: str) -> str:
    """``network:native`` with the native id normalised."""
    return f"{network}:{normalise_native(network, native)}"


def split_address(address: str) -> tuple[Network, str]:
    """(network, native id) of an address; raises AddressError."""
    network, sep, native = address.partition(":")
    if not sep:
        raise AddressError(f"an address is network:native-id, got {shown(address)}")
    return check_network(network), native


def normalise_address(address: str) -> str:
    network, native = split_address(address)
    return make_address(network, native)


def _validate(value: str) -> str:
    try:
        return normalise_address(value)
    except AddressError as exc:
        raise ValueError(str(exc)) from None


Address = Annotated[str, AfterValidator(_validate)]
"""An address as a pydantic field: validated and normalised on the way in."""
