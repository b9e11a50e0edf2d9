"""What the transaction layer and the UA core read from every request, read once.

The message accessors re-parse a header on every access; the hot path (RFC 3261
§17.2.3 matching, §8.2.2.2 merge detection, §12.2.2 dialog matching) needs the top Via,
Call-ID, CSeq and the From/To tags of each request, so they are collected here in one
pass over the header list.  Tags are read with a scanner over the already-validated
field value (the parser checked the name-addr syntax), not with a full URI parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mobilityd.sip import grammar as g
from mobilityd.sip.errors import SipParseError
from mobilityd.sip.headers import CSeq
from mobilityd.sip.message import Request

#   via-parm = sent-protocol LWS sent-by *( SEMI via-params )   (RFC 3261 §25.1)
_VIA_RE = re.compile(
    r"[ \t]*[A-Za-z0-9.!%*_+`'~-]+[ \t]*/[ \t]*[A-Za-z0-9.!%*_+`'~-]+[ \t]*/[ \t]*"
    r"([A-Za-z0-9.!%*_+`'~-]+)[ \t]+(\[[0-9A-Fa-f:.]+\]|[^ \t;:,]+)"
    r"(?:[ \t]*:[ \t]*([0-9]{1,5}))?"
)
_BRANCH_RE = re.compile(r";[ \t]*branch[ \t]*=[ \t]*([^ \t;,]+)", re.IGNORECASE)
_RPORT_RE = re.compile(r";[ \t]*rport(?=[ \t]*(?:[;=,]|$))", re.IGNORECASE)
_WANTED = frozenset({"Via", "From", "To", "Call-ID", "CSeq", "Require", "Replaces",
                     "Record-Route", "Contact", "Session-Expires"})
_METHOD_RE = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
#: The spelling nearly every UA sends (RFC 3261 §20.42 example, RFC 3581 §3): upper-case
#: protocol, a host name or IPv4 address, a port, the branch, an optional bare rport.
#: Anything else takes the general path; both give the same TopVia for these values.
_CANONICAL_VIA_RE = re.compile(
    r"SIP/2\.0/([A-Z]+) ([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?;branch=([^;, \t]+)(;rport)?")
#: Canonical Via values seen before, without their ``;branch=...`` -> (transport, host,
#: port, rport) they gave.  A peer sends the same Via but for the branch in every
#: request (one branch per transaction, RFC 3261 §8.1.1.7), so the canonical regex runs
#: once per peer: with the branch put back (any run of characters the regex's branch
#: group takes), the value matches it with the same groups.  Bounded, cleared when full.
_CANONICAL_VIA_SHAPES: dict[str, tuple[str, str, int | None, bool]] = {}
_CANONICAL_VIA_SHAPES_SIZE = 512


@dataclass(frozen=True, slots=True)
class TopVia:
    """The parts of the top Via that matching and response routing use (§17.2.3,
    §18.2.2, RFC 3581)."""

    transport: str
    host: str
    port: int | None
    branch: str | None
    has_rport: bool

    def __init__(self, transport: str, host: str, port: int | None, branch: str | None,
                 has_rport: bool) -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        object.__setattr__(self, "transport", transport)
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "branch", branch)
        object.__setattr__(self, "has_rport", has_rport)

    @classmethod
    def parse(cls, value: str) -> TopVia:
        split = g.split_branch(value)
        shape = ""
        if split is not None:
            branch, shape = split
            known = _CANONICAL_VIA_SHAPES.get(shape)
            if (known is not None and branch and " " not in branch and "," not in branch
                    and "\t" not in branch):
                return TopVia(known[0], known[1], known[2], branch, known[3])
        canonical = _CANONICAL_VIA_RE.fullmatch(value)
        if canonical is not None:
            transport, host, port_text, branch, rport = canonical.groups()
            parts = (transport, host.lower(), int(port_text) if port_text else None,
                     rport is not None)
            if shape:
                if len(_CANONICAL_VIA_SHAPES) >= _CANONICAL_VIA_SHAPES_SIZE:
                    _CANONICAL_VIA_SHAPES.clear()
                _CANONICAL_VIA_SHAPES[shape] = parts
            return TopVia(parts[0], parts[1], parts[2], branch, parts[3])
        return cls.parse_any(value)

    @classmethod
    def parse_any(cls, value: str) -> TopVia:
        """The reference path of :meth:`parse`, for every spelling the grammar allows
        (``parse`` takes a one-regex shortcut for the canonical one first)."""
        head, _, params = value.partition(";")
        parts = head.split()
        if len(parts) == 2 and parts[0].upper().startswith("SIP/2.0/"):
            fast = cls._fast(parts[0][8:], parts[1], params)
            if fast is not None:
                return fast
        return cls._general(value)

    @classmethod
    def _fast(cls, transport: str, sent_by: str, params: str) -> TopVia | None:
        """The common spelling: ``SIP/2.0/UDP host[:port];params`` without LWS."""
        if sent_by.startswith("["):
            end = sent_by.find("]")
            host, port_text = sent_by[: end + 1], sent_by[end + 2 :]
            if end < 0 or (sent_by[end + 1 : end + 2] not in ("", ":")):
                return None
        else:
            host, _, port_text = sent_by.partition(":")
        if port_text and not (port_text.isascii() and port_text.isdigit()
                              and len(port_text) <= 5):
            return None
        if not transport or not host:
            return None
        branch = None
        rport = False
        if params:
            for param in params.split(";"):
                name, _, val = param.partition("=")
                name = name.strip(" \t").lower()
                if name == "branch":
                    branch = val.strip(" \t") or None
                elif name == "rport":
                    rport = True
        return TopVia(transport.upper(), host.lower(), int(port_text) if port_text else None,
                   branch, rport)

    @classmethod
    def _general(cls, value: str) -> TopVia:
        """Any spelling the grammar allows (LWS around ``/`` and ``:``)."""
        match = _VIA_RE.match(value)
        if match is None:
            raise SipParseError("bad Via header: sent-protocol or sent-by")
        transport, host, port = match.groups()
        rest = value[match.end():]
        branch = _BRANCH_RE.search(rest)
        return TopVia(transport.upper(), host.lower(), int(port) if port else None,
                   branch.group(1) if branch else None, _RPORT_RE.search(rest) is not None)


def parse_cseq(value: str, method: str | None = None) -> CSeq:
    """CSeq = 1*DIGIT LWS Method (RFC 3261 §20.16), number below 2**31; for a request
    (``method`` given) the method must be the request's (§8.1.1.5)."""
    parts = value.split()
    if (len(parts) != 2 or not parts[0].isascii() or not parts[0].isdigit()
            or len(parts[0]) > 10):
        raise SipParseError("bad CSeq header")
    seq = int(parts[0])
    if seq >= 2**31:
        raise SipParseError("bad CSeq header: number too large")
    if method is not None:
        if parts[1] != method:
            raise SipParseError("CSeq method differs from the request method")
    elif _METHOD_RE.fullmatch(parts[1]) is None:
        raise SipParseError("bad CSeq header: method")
    return CSeq(seq, parts[1])


#: Recent ``split_tag`` results: a call's From and To values recur in its INVITE, ACK
#: and BYE (RFC 3261 §12.2.1.1), and an INVITE's untagged To is often the same for
#: every call.  Bounded: emptied when full.
_SPLIT_CACHE: dict[str, tuple[str, str | None]] = {}
_SPLIT_CACHE_SIZE = 4096


def split_tag(value: str) -> tuple[str, str | None]:
    """``(value without its tag parameter, tag)`` of a From/To value (§20.20, §20.39),
    remembered for the values seen last (a pure function of the string)."""
    found = _SPLIT_CACHE.get(value)
    if found is None:
        found = split_tag_uncached(value)
        if len(_SPLIT_CACHE) >= _SPLIT_CACHE_SIZE:
            _SPLIT_CACHE.clear()
        _SPLIT_CACHE[value] = found
    return found


def split_tag_uncached(value: str) -> tuple[str, str | None]:
    """``(value without its tag parameter, tag)`` of a From/To value (§20.20, §20.39).

    Header parameters start after the ``>`` of a name-addr, or after the first ``;``
    of a bare addr-spec (which cannot hold ``;`` in its URI, §20.10).
    """
    close = value.rfind(">")
    if close > 0 and value.count(">") == 1:
        # fast paths: name-addr without parameters, or with the tag only
        at = value.find(";", close)
        if at < 0:
            return value, None
        if value.startswith(";tag=", at) and value.find(";", at + 5) < 0:
            return value[: close + 1], value[at + 5 :].rstrip(" \t")
    start = 0
    if value.startswith('"'):
        index = 1
        while index < len(value):
            char = value[index]
            if char == "\\":
                index += 2
                continue
            if char == '"':
                break
            index += 1
        start = index + 1
    close = value.find(">", value.find("<", start)) if "<" in value[start:] else -1
    params_at = value.find(";", close + 1 if close >= 0 else start)
    if params_at < 0:
        return value, None
    head, params = value[:params_at], value[params_at + 1:].split(";")
    tag = None
    kept = []
    for param in params:
        name, _, val = param.partition("=")
        if name.strip(" \t").lower() == "tag" and tag is None:
            tag = val.strip(" \t")
        else:
            kept.append(param)
    if tag is None:
        return value, None
    return (";".join([head, *kept]) if kept else head.rstrip(" \t")), tag


@dataclass(slots=True)
class RequestFacts:
    """Top Via, Call-ID, CSeq, tags and a few flags of one request."""

    method: str
    via: TopVia
    via_value: str
    call_id: str
    cseq: CSeq
    from_value: str  # without tag
    from_tag: str | None
    to_value: str  # without tag
    to_tag: str | None
    has_require: bool = False
    has_replaces: bool = False
    has_record_route: bool = False
    contact: str | None = None  # the first Contact value (syntax checked by the parser)
    contacts: int = 0  # how many Contact values
    has_session_expires: bool = False

    def __init__(  # noqa: PLR0917 - the fields, positional as @dataclass makes them
            self, method: str, via: TopVia, via_value: str, call_id: str, cseq: CSeq,
            from_value: str, from_tag: str | None, to_value: str, to_tag: str | None,
            has_require: bool = False, has_replaces: bool = False,
            has_record_route: bool = False, contact: str | None = None, contacts: int = 0,
            has_session_expires: bool = False) -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        self.method = method
        self.via = via
        self.via_value = via_value
        self.call_id = call_id
        self.cseq = cseq
        self.from_value = from_value
        self.from_tag = from_tag
        self.to_value = to_value
        self.to_tag = to_tag
        self.has_require = has_require
        self.has_replaces = has_replaces
        self.has_record_route = has_record_route
        self.contact = contact
        self.contacts = contacts
        self.has_session_expires = has_session_expires

    @classmethod
    def of(cls, request: Request) -> RequestFacts:
        """Collect the facts; ``SipParseError`` when a mandatory field is missing or
        malformed (the request is then answered 400 or dropped, §8.2, §18.3)."""
        grouped = request.parsed_fields()
        if grouped is not None:
            return cls._of_parsed(request, grouped)
        found: dict[str, str] = {}
        contacts = 0
        for name, value in request.headers:
            if name in _WANTED:
                if name == "Contact":
                    contacts += 1
                if name not in found:
                    found[name] = value  # the first of each (the top Via)
        get = found.get
        via_value, from_value, to_value = get("Via"), get("From"), get("To")
        call_id, cseq_value = get("Call-ID"), get("CSeq")
        if (via_value is None or from_value is None or to_value is None or call_id is None
                or cseq_value is None):
            raise SipParseError("missing Via, From, To, Call-ID or CSeq (RFC 3261 §8.1.1)")
        from_plain, from_tag = split_tag(from_value)
        to_plain, to_tag = split_tag(to_value)
        return RequestFacts(
            request.method, TopVia.parse(via_value), via_value, call_id.strip(" \t"),
            parse_cseq(cseq_value, request.method), from_plain, from_tag, to_plain, to_tag,
            "Require" in found, "Replaces" in found, "Record-Route" in found,
            found.get("Contact"), contacts, "Session-Expires" in found)

    @classmethod
    def _of_parsed(cls, request: Request, grouped: dict[str, list[str]]) -> RequestFacts:
        """`of` for a message fresh from `parse_message`, which has already found (and
        syntax-checked) the fields: no pass over the header list, and the CSeq it
        parsed is reused when it meets §8.1.1.5 (below 2**31, the request's method)."""
        method = request.method
        get = grouped.get
        vias, froms, tos = get("via"), get("from"), get("to")
        call_ids, cseqs = get("call-id"), get("cseq")
        if not (vias and froms and tos and call_ids and cseqs):
            raise SipParseError("missing Via, From, To, Call-ID or CSeq (RFC 3261 §8.1.1)")
        via_value = vias[0]
        from_plain, from_tag = split_tag(froms[0])
        to_plain, to_tag = split_tag(tos[0])
        contacts = get("contact")
        cseq = request._typed.get(("cseq", cseqs[0]))
        if not (isinstance(cseq, CSeq) and cseq.seq < 2**31 and cseq.method == method):
            cseq = parse_cseq(cseqs[0], method)  # the reference check, naming the problem
        return RequestFacts(
            method, TopVia.parse(via_value), via_value, call_ids[0].strip(" \t"),
            cseq, from_plain, from_tag, to_plain, to_tag,
            "require" in grouped, "replaces" in grouped, "record-route" in grouped,
            contacts[0] if contacts else None, len(contacts) if contacts else 0,
            "session-expires" in grouped)
