"""SIP ABNF (RFC 3261 §25.1) as compiled regexes, each next to the rule it implements.

Also the few scanning helpers every header parser needs: splitting a field value on
top-level commas or semicolons (never inside a quoted-string or ``<...>``), reading
generic parameters, and quoting / unquoting quoted-strings.  Everything here is pure.
"""

from __future__ import annotations

import re

from mobilityd.sip.errors import SipParseError

#   token       =  1*(alphanum / "-" / "." / "!" / "%" / "*"
#                  / "_" / "+" / "`" / "'" / "~" )
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
TOKEN_RE = re.compile(TOKEN)

#   word        =  1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
#                  "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" /
#                  "{" / "}" )
WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
#   callid   =  word [ "@" word ]
CALL_ID_RE = re.compile(rf"{WORD}(?:@{WORD})?")

#   SIP-Version    =  "SIP" "/" 1*DIGIT "." 1*DIGIT
SIP_VERSION = r"[Ss][Ii][Pp]/[0-9]+\.[0-9]+"

#   Request-Line   =  Method SP Request-URI SP SIP-Version CRLF
REQUEST_LINE_RE = re.compile(rf"({TOKEN}) ([^ \t]+) ({SIP_VERSION})")

#   Status-Line     =  SIP-Version SP Status-Code SP Reason-Phrase CRLF
#   Status-Code     =  3DIGIT  (extension-code)
#   Reason-Phrase   =  *(reserved / unreserved / escaped / UTF8-NONASCII / UTF8-CONT
#                      / SP / HTAB)
STATUS_LINE_RE = re.compile(rf"({SIP_VERSION}) ([0-9]+) ([^\x00-\x08\x0a-\x1f\x7f]*)")

#   scheme         =  ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")

#   quoted-string  =  SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
#   qdtext         =  LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
#   quoted-pair    =  "\" (%x00-09 / %x0B-0C / %x0E-7F)
QUOTED_STRING = r'"[^"\\\r\n]*(?:\\[^\r\n][^"\\\r\n]*)*"'
QUOTED_STRING_RE = re.compile(QUOTED_STRING)
_QUOTED_PAIR_RE = re.compile(r"\\(.)")

#   hostname         =  *( domainlabel "." ) toplabel [ "." ]
#   domainlabel      =  alphanum / alphanum *( alphanum / "-" ) alphanum
#   toplabel         =  ALPHA / ALPHA *( alphanum / "-" ) alphanum
#   (toplabel is relaxed to alphanum so that a numeric label list that is not a valid
#   IPv4address is still rejected by IPV4 below, not mistaken for a hostname)
#   (written without nested ambiguity so that a failing match cannot backtrack for long;
#   a label ending in "-" is tolerated)
HOSTNAME = r"(?:[A-Za-z0-9][A-Za-z0-9\-]*\.)*[A-Za-z][A-Za-z0-9\-]*\.?"
#   IPv4address    =  1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
IPV4 = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"
#   IPv6reference  =  "[" IPv6address "]"  (checked with ipaddress after the match)
IPV6_REFERENCE = r"\[[0-9A-Fa-f:.]+\]"
HOST: str = rf"(?:{IPV4}|{HOSTNAME}|{IPV6_REFERENCE})"
HOST_RE = re.compile(HOST)
HOSTPORT_RE = re.compile(rf"({HOST})(?::([0-9]{{1,5}}))?")

#   via-parm          =  sent-protocol LWS sent-by *( SEMI via-params )
#   sent-protocol     =  protocol-name SLASH protocol-version SLASH transport
#   sent-by           =  host [ COLON port ]
VIA_RE = re.compile(
    rf"({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t]+"
    rf"({HOST})(?:[ \t]*:[ \t]*([0-9]{{1,5}}))?[ \t]*"
)

#   escaped     =  "%" HEXDIG HEXDIG
_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")

# Characters that stand for themselves in the parts of a SIP URI (RFC 3261 §25.1).
UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()"
_UNRESERVED_CLASS = r"A-Za-z0-9\-_.!~*'()%"  # unreserved / escaped (checked by unescape)
#   user             =  1*( unreserved / escaped / user-unreserved )
#   user-unreserved  =  "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
USER_RE: re.Pattern[str] = re.compile(rf"[{_UNRESERVED_CLASS}&=+$,;?/]+")
#   password         =  *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
PASSWORD_RE: re.Pattern[str] = re.compile(rf"[{_UNRESERVED_CLASS}&=+$,]*")
#   paramchar         =  param-unreserved / unreserved / escaped
#   param-unreserved  =  "[" / "]" / "/" / ":" / "&" / "+" / "$"
PARAMCHARS_RE: re.Pattern[str] = re.compile(rf"[{_UNRESERVED_CLASS}\[\]/:&+$]+")
#   hname / hvalue  =  *( hnv-unreserved / unreserved / escaped )
#   hnv-unreserved  =  "[" / "]" / "/" / "?" / ":" / "+" / "$"
HNV_RE: re.Pattern[str] = re.compile(rf"[{_UNRESERVED_CLASS}\[\]/?:+$]*")
HNV_NONEMPTY: str = rf"[{_UNRESERVED_CLASS}\[\]/?:+$]+"
USER_SAFE = frozenset(UNRESERVED + "&=+$,;?/")  # user-unreserved
PASSWORD_SAFE = frozenset(UNRESERVED + "&=+$,")
PARAM_SAFE = frozenset(UNRESERVED + "[]/:&+$")  # param-unreserved
HEADER_SAFE = frozenset(UNRESERVED + "[]/?:+$")  # hnv-unreserved


def unescape(text: str, what: str) -> str:
    """Decode ``%HH`` escapes (RFC 3261 §19.1.2); a lone ``%`` is a parse error."""
    if "%" not in text:
        return text
    if _BAD_ESCAPE_RE.search(text):
        raise SipParseError(f"bad %-escape in {what}")
    raw = _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), text)
    # Escaped octets are UTF-8 (RFC 3261 §19.1.2); keep undecodable ones lossless.
    try:
        return raw.encode("latin-1").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return raw


def escape(text: str, safe: frozenset[str]) -> str:
    """Encode every character outside ``safe`` as ``%HH`` of its UTF-8 octets."""
    if all(ch in safe for ch in text):
        return text
    out: list[str] = []
    for ch in text:
        if ch in safe:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
    return "".join(out)


def split_top_level(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quoted-strings and ``<...>`` (RFC 3261 §7.3.1).

    An unterminated quoted-string or ``<`` raises SipParseError.
    """
    if '"' not in text and "<" not in text:
        return text.split(sep) if sep in text else [text]
    parts: list[str] = []
    start = 0
    in_quote = False
    in_angle = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if in_quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif in_angle:
            if ch == ">":
                in_angle = False
        elif ch == "<":
            in_angle = True
        elif ch == sep:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if in_quote:
        raise SipParseError("unterminated quoted string")
    if in_angle:
        raise SipParseError("unterminated <")
    parts.append(text[start:])
    return parts


def unquote(text: str) -> str:
    """The content of a quoted-string with quoted-pairs resolved (RFC 3261 §25.1)."""
    return _QUOTED_PAIR_RE.sub(r"\1", text[1:-1])


def quote(text: str) -> str:
    """A quoted-string for ``text``, escaping ``"`` and ``\\`` (RFC 3261 §25.1)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


#   generic-param  =  token [ EQUAL gen-value ]
#   gen-value      =  token / host / quoted-string
#   (plus a bare IPv6address, as in via-received, RFC 3261 §20.42 / RFC 5118 §4.5)
_GEN_VALUE_RE = re.compile(rf"(?:{TOKEN}|{HOST}|{QUOTED_STRING}|[0-9A-Fa-f:.]+)")
_LWS_RE = re.compile(r"[ \t]+")


def parse_params(parts: list[str], what: str) -> dict[str, str | None]:
    """Read ``generic-param`` items (already split on ``;``) into an ordered dict.

    Names are lower-cased (they are case-insensitive tokens); quoted values keep their
    quotes so that they serialise back unchanged; a name without ``=`` maps to None.
    """
    params: dict[str, str | None] = {}
    for part in parts:
        name, eq, value = part.partition("=")
        name = name.strip(" \t")
        if not TOKEN_RE.fullmatch(name):
            raise SipParseError(f"bad parameter name in {what}")
        if eq:
            value = value.strip(" \t")
            if not _GEN_VALUE_RE.fullmatch(value):
                raise SipParseError(f"bad value for parameter {name} in {what}")
            params[name.lower()] = value
        else:
            params[name.lower()] = None
    return params


#   generic-param *( SEMI generic-param ) as one scan: each item is
#   SEMI token [ EQUAL gen-value ], gen-value = token / host / quoted-string
_PARAM_ITEM_RE = re.compile(
    rf"[ \t]*;[ \t]*({TOKEN})"
    rf"(?:[ \t]*=[ \t]*({QUOTED_STRING}|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]+|{TOKEN}|{IPV6_REFERENCE}))?"
    rf"[ \t]*"
)


def parse_param_string(text: str, what: str) -> dict[str, str | None]:
    """``*( SEMI generic-param )`` starting at a ``;`` (RFC 3261 §25.1) in one scan.

    Names are lower-cased; quoted values keep their quotes; a name without ``=`` maps
    to None.  Anything else (an empty parameter, junk) raises SipParseError.
    """
    params: dict[str, str | None] = {}
    pos = 0
    end = len(text)
    match_item = _PARAM_ITEM_RE.match
    while pos < end:
        match = match_item(text, pos)
        if match is None:
            raise SipParseError(f"bad parameter in {what}")
        params[match.group(1).lower()] = match.group(2)
        pos = match.end()
        if pos < end and text[pos] != ";":
            raise SipParseError(f"bad parameter in {what}")
    return params


def format_params(params: dict[str, str | None]) -> str:
    """``;name=value`` for each parameter, in order."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def collapse_lws(text: str) -> str:
    """Replace runs of SP/HTAB with one SP (RFC 3261 §7.3.1)."""
    return _LWS_RE.sub(" ", text)


# ---------------------------------------------------------------------------------------
# Syntax-only checks for the common forms of the header fields parse_message validates.
# A value these accept is valid (the typed parse of it cannot fail, a property the fuzz
# tests check); a value they refuse is handed to the full parser, which either accepts
# an unusual form or raises naming the problem.  They exist for speed: the typed values
# are then built only when an accessor asks for them.
# ---------------------------------------------------------------------------------------

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_STRICT = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
IPV4_RE = re.compile(IPV4)
IPV4_STRICT_RE = re.compile(_IPV4_STRICT)
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
_HOSTPORT_STRICT = rf"(?:{_IPV4_STRICT}|{HOSTNAME})(?::{_PORT})?"
_PLAIN_PARAMS = rf"(?:[ \t]*;[ \t]*{TOKEN}(?:[ \t]*=[ \t]*(?:{QUOTED_STRING}|{TOKEN}))?)*[ \t]*"
_URI_PARAMCHARS = r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$]+"
_URI_TAIL = (
    rf"(?:;{_URI_PARAMCHARS}(?:={_URI_PARAMCHARS})?)*"
    r"(?:\?[A-Za-z0-9\-_.!~*'()\[\]/?:+$]+=[A-Za-z0-9\-_.!~*'()\[\]/?:+$]*"
    r"(?:&[A-Za-z0-9\-_.!~*'()\[\]/?:+$]+=[A-Za-z0-9\-_.!~*'()\[\]/?:+$]*)*)?"
)
_USERINFO = r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]+(?::[A-Za-z0-9\-_.!~*'()&=+$,]*)?@)?"
_USERINFO_NO_SEMI = r"(?:[A-Za-z0-9\-_.!~*'()&=+$/]+(?::[A-Za-z0-9\-_.!~*'()&=+$]*)?@)?"

#   name-addr with a sip/sips URI, then *( SEMI generic-param )      (RFC 3261 §25.1)
NAME_ADDR_SYNTAX_RE = re.compile(
    rf"(?:{QUOTED_STRING}[ \t]*|(?:{TOKEN}(?:[ \t]+{TOKEN})*[ \t]*)?)"
    rf"<sips?:{_USERINFO}{_HOSTPORT_STRICT}{_URI_TAIL}>{_PLAIN_PARAMS}"
)
#   addr-spec form: the URI has no parameters or headers of its own  (RFC 3261 §20.10)
ADDR_SPEC_SYNTAX_RE = re.compile(rf"sips?:{_USERINFO_NO_SEMI}{_HOSTPORT_STRICT}{_PLAIN_PARAMS}")
#   via-parm with sent-by a hostname or IPv4 address and plain parameters
VIA_SYNTAX_RE = re.compile(
    rf"SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*{TOKEN}[ \t]+"
    rf"(?:{_IPV4_STRICT}|{HOSTNAME})(?:[ \t]*:[ \t]*{_PORT})?{_PLAIN_PARAMS}"
)
# Via parameters with value rules of their own (ttl, received, rport=) go through the
# full parser; an empty branch value is already refused by VIA_SYNTAX_RE.
_RPORT_VALUE_RE = re.compile(r"rport[ \t]*=")


# Values name_addr_syntax_ok accepted before: a peer repeats its To and Contact values
# call after call.  The check is pure, so remembering its True answers changes nothing
# but the cost; bounded (cleared when full) so that hostile input cannot grow it.
_GOOD_NAME_ADDRS: set[str] = set()
_GOOD_NAME_ADDRS_SIZE = 1024
# Tagged values accepted through their remembered shape (bounded, cleared when full).
_TAGGED_NAME_ADDRS: set[str] = set()
_TAGGED_NAME_ADDRS_SIZE = 4096


def name_addr_syntax_ok(value: str) -> bool:
    """True when ``value`` is a common, certainly valid name-addr / addr-spec.

    A From or To differs from call to call only in its tag (RFC 3261 §19.3): a value
    whose ``;tag=`` parameter (after the ``<URI>``) is a token and whose remainder
    without it was accepted before is valid without another full match - one more
    generic-param where a parameter starts keeps the value valid (RFC 3261 §25.1)."""
    if value in _GOOD_NAME_ADDRS or value in _TAGGED_NAME_ADDRS:
        return True
    shape = _without_tag(value)
    if shape is not None and shape in _GOOD_NAME_ADDRS:
        # The same From (and the To once tagged) comes back in the call's ACK and BYE
        # (RFC 3261 §12.2.1.1): remember the exact value apart, so that these per-call
        # values never evict the long-lived shapes above.
        if len(_TAGGED_NAME_ADDRS) >= _TAGGED_NAME_ADDRS_SIZE:
            _TAGGED_NAME_ADDRS.clear()
        _TAGGED_NAME_ADDRS.add(value)
        return True
    if not name_addr_syntax_ok_full(value):
        return False
    _remember_name_addr(value)
    if shape is not None and name_addr_syntax_ok_full(shape):
        _remember_name_addr(shape)
    return True


def _without_tag(value: str) -> str | None:
    """``value`` with its ``;tag=<token>`` header parameter taken out, or None when
    there is none that is certainly outside the ``<URI>``."""
    head, marker, tail = value.partition(";tag=")
    if not marker:
        return None
    tag, semi, rest = tail.partition(";")
    if "<" in head and head.rfind(">") < head.rfind("<"):
        return None  # perhaps a URI parameter
    if "%" in tag or not _is_token(tag):
        return None
    return head + semi + rest


def _remember_name_addr(value: str) -> None:
    if len(_GOOD_NAME_ADDRS) >= _GOOD_NAME_ADDRS_SIZE:
        _GOOD_NAME_ADDRS.clear()
    _GOOD_NAME_ADDRS.add(value)


def name_addr_syntax_ok_full(value: str) -> bool:
    """`name_addr_syntax_ok` without the remembered values: the reference."""
    return "%" not in value and (
        NAME_ADDR_SYNTAX_RE.fullmatch(value) is not None
        or ADDR_SPEC_SYNTAX_RE.fullmatch(value) is not None
    )


# Via values that via_syntax_ok accepted, with their ``;branch=...`` taken out: a peer
# sends the same sent-protocol, sent-by and other parameters in every request and only
# the branch changes (RFC 3261 §8.1.1.7).  Bounded, cleared when full.
_GOOD_VIA_SHAPES: set[str] = set()
_GOOD_VIA_SHAPES_SIZE = 512


def _is_token(text: str) -> bool:
    """``token`` (RFC 3261 §25.1); letters and digits only are checked without the regex."""
    return (text.isalnum() and text.isascii()) or TOKEN_RE.fullmatch(text) is not None


def split_branch(value: str) -> tuple[str, str] | None:
    """(branch, the value without its ``;branch=<branch>``) of a Via value, or None when
    it has no ``;branch=``.  The branch is the one part of a UA's Via that changes from
    transaction to transaction (RFC 3261 §8.1.1.7); the rest, its shape, is what the
    Via checks and ``TopVia.parse`` remember."""
    head, marker, tail = value.partition(";branch=")
    if not marker:
        return None
    branch, semi, rest = tail.partition(";")
    return branch, head + semi + rest


def via_syntax_ok(value: str) -> bool:
    """True when ``value`` is a common, certainly valid Via value.

    A value whose branch is a token and whose remainder (the value without
    ``;branch=<token>``) was accepted before is valid without another full match:
    inserting one ``;branch=token`` generic-param where a parameter starts keeps a
    via-parm valid (RFC 3261 §25.1 via-params)."""
    split = split_branch(value)
    if split is not None:
        branch, shape = split
        if shape in _GOOD_VIA_SHAPES and _is_token(branch):
            return True
    if VIA_SYNTAX_RE.fullmatch(value) is None:
        return False
    low = value.lower()
    if "ttl" in low or "received" in low:
        return False
    if "rport" in low and _RPORT_VALUE_RE.search(low) is not None:
        return False
    if (split is not None and TOKEN_RE.fullmatch(split[0]) is not None
            and via_syntax_ok_full(split[1])):
        if len(_GOOD_VIA_SHAPES) >= _GOOD_VIA_SHAPES_SIZE:
            _GOOD_VIA_SHAPES.clear()
        _GOOD_VIA_SHAPES.add(split[1])
    return True


def via_syntax_ok_full(value: str) -> bool:
    """`via_syntax_ok` without the remembered shapes: the reference it must agree with."""
    if VIA_SYNTAX_RE.fullmatch(value) is None:
        return False
    low = value.lower()
    if "ttl" in low or "received" in low:
        return False
    return "rport" not in low or _RPORT_VALUE_RE.search(low) is None
