"""OSCAR (ICQ and AIM): a server for unmodified OSCAR clients.

Modules, bottom up: ``errors``, ``tlv`` and ``flap`` (framing), ``snac`` (typed SNAC
bodies), ``codec`` (bytes <-> wire events), ``auth`` (BUCP and roasted logins, BOS
cookies), ``rates`` (rate classes), ``feedbag`` (server-stored lists), ``translate``
(wire <-> canonical), ``session`` (the per-connection state machine), ``protocol``
(Twisted glue) and ``adapter`` (the entry point).
"""
