"""Errors. ``OscarProtocolError`` means the peer broke the protocol: the connection
that sent it is closed with a FLAP sign-off. Anything else escaping our code is our
own bug."""

from __future__ import annotations


class OscarProtocolError(Exception):
    """The peer sent something OSCAR does not allow (malformed, oversized, out of
    order). The message is fit for a log line and never carries a secret."""


class CookieRejected(OscarProtocolError):
    """A BOS login cookie that is forged, expired, already used or unreadable."""
