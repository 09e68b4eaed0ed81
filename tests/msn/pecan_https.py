"""The HTTPS requests msn-pecan writes, byte for byte, for tests to replay.

0.1.1 (its nexus.c): the versionless nexus request and the Passport 1.4 GET.
>= 0.1.2 (its pn_auth.c): the SOAP ``POST /RST.srf``. Credentials are test values.
"""

from __future__ import annotations

# msn-pecan 0.1.1 (nexus.c): the nexus request has no HTTP version.
PECAN_NEXUS = b"GET /rdr/pprdr.asp\r\n\r\n"


def pecan_login2(path: str, host: str, password: str) -> bytes:
    """msn-pecan 0.1.1's Passport 1.4 request (nexus.c), values from USR TWN S."""
    quoted = password.replace("&", "%26").replace("<", "%3C").replace(">", "%3E")
    return (
        f"GET {path} HTTP/1.1\r\n"
        "Authorization: Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,"
        f"sign-in=test1%40example.com,pwd={quoted},lc=1033,id=507,tw=40,fs=1,"
        "ru=http%3A%2F%2Fmessenger%2Emsn%2Ecom,ct=1062764429,kpp=1,kv=5,ver=2.1.0173.1,"
        "tpf=43f8a4c8ed940c04e3740be46c4d1619\r\n"
        "User-Agent: MSMSGS\r\n"
        f"Host: {host}\r\n"
        "Connection: Keep-Alive\r\n"
        "Cache-Control: no-cache\r\n\r\n"
    ).encode()


def pecan_rst(email: str, password: str) -> bytes:
    """msn-pecan >= 0.1.2's WS-Trust request (pn_auth.c): three tokens asked for in one
    RequestMultipleSecurityTokens, credentials in wsse:UsernameToken."""
    rst = (
        '<wst:RequestSecurityToken Id="RST{n}">'
        "<wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue"
        "</wst:RequestType><wsp:AppliesTo><wsa:EndpointReference>"
        "<wsa:Address>{address}</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>"
        "{policy}</wst:RequestSecurityToken>"
    )
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext"'
        ' xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion"'
        ' xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy"'
        ' xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"'
        ' xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing"'
        ' xmlns:wssc="http://schemas.xmlsoap.org/ws/2004/04/sc"'
        ' xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust">'
        "<Header>"
        '<ps:AuthInfo xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL"'
        ' Id="PPAuthInfo"><ps:HostingApp>{7108E71A-9926-4FCB-BCC9-9A9D3F32E423}</ps:HostingApp>'
        "<ps:BinaryVersion>4</ps:BinaryVersion><ps:UIVersion>1</ps:UIVersion>"
        "<ps:Cookies></ps:Cookies><ps:RequestParams>AQAAAAIAAABsYwQAAAAxMDMz</ps:RequestParams>"
        "</ps:AuthInfo>"
        '<wsse:Security><wsse:UsernameToken Id="user">'
        f"<wsse:Username>{email}</wsse:Username><wsse:Password>{password}</wsse:Password>"
        "</wsse:UsernameToken></wsse:Security>"
        "</Header><Body>"
        '<ps:RequestMultipleSecurityTokens xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL" Id="RSTS">'
        + rst.format(n=0, address="http://Passport.NET/tb", policy="")
        + rst.format(
            n=1,
            address="messenger.msn.com",
            policy='<wsse:PolicyReference URI="?id=507"></wsse:PolicyReference>',
        )
        + rst.format(
            n=2,
            address="messengersecure.live.com",
            policy='<wsse:PolicyReference URI="MBI_SSL"></wsse:PolicyReference>',
        )
        + "</ps:RequestMultipleSecurityTokens></Body></Envelope>"
    )
    # pn_auth.c writes the password as it is; a real client would escape "&" and "<".
    data = body.encode("utf-8")
    return (
        "POST /RST.srf HTTP/1.1\r\n"
        "Accept: */*\r\n"
        "Content-Type: text/xml; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\n"
        "User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)\r\n"
        "Host: login.live.com\r\n"
        "Connection: Keep-Alive\r\n"
        "Cache-Control: no-cache\r\n\r\n"
    ).encode() + data


def xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
