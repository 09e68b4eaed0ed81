"""Passport 1.4 ("Tweener") HTTP messages, sans-IO.

MSNP8-12 clients log in in two HTTP steps before ``USR n TWN S <ticket>``:

1. ``GET`` the nexus (``https://nexus.passport.com/rdr/pprdr.asp`` by default);
   the answer's ``PassportURLs`` header names the login URL in ``DALogin=host/path``.
2. ``GET`` that URL with ``Authorization: Passport1.4 OrgVerb=GET,OrgURL=...,
   sign-in=<email>,pwd=<password>,<policy from USR TWN S>``; success is
   ``Authentication-Info: Passport1.4 da-status=success,...,from-PP='t=<ticket>&p=...'``,
   failure a 401 with ``WWW-Authenticate: Passport1.4 da-status=failed,...``.

Facts from the yellows111 MSNP wiki (services/passport14) and [MS-PASS] 2.2.
The Authorization header carries the password: never log it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

MAX_AUTHORIZATION = 4096

# What the real service sent after USR TWN I (hypothetic.org, msnp.py vector).
TWN_POLICY = (
    "lc=1033,id=507,tw=40,fs=1,ru=http%3A%2F%2Fmessenger%2Emsn%2Ecom,ct=1062764229,"
    "kpp=1,kv=5,ver=2.1.0173.1,tpf=43f8a4c8ed940c04e3740be46c4d1619"
)


@dataclass(frozen=True, slots=True)
class SignIn:
    """The credentials of a Passport1.4 Authorization header."""

    email: str
    password: str = field(repr=False)


def parse_authorization(header: str) -> SignIn | None:
    """Credentials from ``Authorization: Passport1.4 ...``; None if absent or malformed.

    Some clients repeat the scheme (``Passport1.4 Passport1.4 OrgVerb=...``).
    """
    if len(header) > MAX_AUTHORIZATION:
        return None
    text = header.strip()
    scheme = "Passport1.4"
    if not text.startswith(scheme):
        return None
    while text.startswith(scheme):
        text = text[len(scheme) :].lstrip()
    values: dict[str, str] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if sep:
            values.setdefault(name.strip().lower(), value.strip())
    email = values.get("sign-in")
    password = values.get("pwd")
    if not email or password is None:
        return None
    return SignIn(email=unquote(email), password=unquote(password))


def nexus_header(login_host: str, login_path: str = "/login2.srf") -> str:
    """The ``PassportURLs`` value pointing clients at our login endpoint."""
    return f"DARealm=Passport.Net,DALogin={login_host}{login_path},DAReg=,Properties=,Privacy=,GeneralRedir=,Help=,ConfigVersion=15"


def success_header(ticket: str, profile: str = "gateway") -> str:
    """``Authentication-Info`` for a successful sign-in carrying ``ticket``."""
    return (
        "Passport1.4 da-status=success,tname=MSPAuth,tname=MSPProf,tname=MSPSec,"
        f"from-PP='t={ticket}&p={profile}',ru=http://messenger.msn.com"
    )


def failure_header() -> str:
    """``WWW-Authenticate`` for a refused sign-in."""
    return (
        "Passport1.4 da-status=failed,srealm=Passport.NET,ts=-3,prompt,"
        "cburl=http://messenger.msn.com,cbtxt=Sign%20in%20failed"
    )


def ticket_from_usr(argument: str) -> str:
    """The ticket inside ``USR n TWN S t=<ticket>&p=<profile>`` (or a bare ticket)."""
    for part in argument.split("&"):
        if part.startswith("t="):
            return part[2:]
    return argument
