"""SIP requests and responses: parse, serialise, typed access (RFC 3261 §7, §18.3, §20).

`parse_message(data)` turns one datagram (or one frame cut by `StreamFramer`) into a
`Request` or `Response`; `bytes(msg)` serialises it and sets Content-Length.  The
parser is strict: everything RFC 4475 §3.1.2 calls invalid raises `SipParseError`,
never another exception.  The header fields a transaction needs (Via, From, To,
Call-ID, CSeq, Max-Forwards, Contact, Content-Length) are checked while parsing; the
others are parsed when their accessor is used and raise `SipParseError` then.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NoReturn, TypeVar, cast

from mobilityd.sip import grammar as g
from mobilityd.sip.errors import SipParseError, SipUsageError, StatusCode
from mobilityd.sip.headers import (
    CANONICAL_NAMES,
    LIST_HEADERS,
    PACKABLE_LIST_HEADERS,
    AuthChallenge,
    AuthCredentials,
    CSeq,
    Event,
    Headers,
    PartialMessage,
    Replaces,
    SessionExpires,
    SubscriptionState,
    Via,
    parse_delta_seconds,
    parse_max_forwards,
    parse_sip_date,
    parse_token_list,
    plain_list_ok,
)
from mobilityd.sip.uri import NameAddr, SipUri, check_request_uri_scheme, parse_request_uri

__all__ = [
    "DATAGRAM_LIMITS",
    "STREAM_LIMITS",
    "Headers",
    "ParseLimits",
    "Request",
    "Response",
    "check_request_uri_scheme",
    "make_response",
    "parse_message",
    "reason_phrase",
]

SIP_VERSION = "SIP/2.0"
T = TypeVar("T")

# RFC 3261 §21 reason phrases (and RFC 3515 §2.4.7, RFC 4028 §6, RFC 6665 §8.3.1).
# fmt: off
_REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy",
    380: "Alternative Service", 400: "Bad Request", 401: "Unauthorized",
    402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    410: "Gone", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here", 489: "Bad Event",
    491: "Request Pending", 493: "Undecipherable", 500: "Server Internal Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-out", 505: "Version Not Supported", 513: "Message Too Large",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}
# fmt: on

# Methods of RFC 3261 and the extensions the daemon speaks (RFC 3262, 3311, 3428, 3515,
# 3903, 6086, 6665).  Any other token is an extension method (RFC 3261 §25.1).
# fmt: off
KNOWN_METHODS = frozenset({
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "UPDATE", "SUBSCRIBE",
    "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE",
})
# fmt: on


def reason_phrase(status: int) -> str:
    """The default reason phrase for ``status`` (RFC 3261 §21)."""
    return _REASON_PHRASES.get(status) or _REASON_PHRASES.get(status // 100 * 100, "Unknown")


@dataclass(frozen=True)
class ParseLimits:
    """Resource limits applied while parsing (RFC 3261 §18.1.1, RFC 4475 §4)."""

    max_message_size: int = 65535  # octets of one datagram / frame -> 513
    max_headers: int = 256  # header field lines -> 400
    max_header_line: int = 8192  # octets in one (unfolded) header field -> 400
    max_vias: int = 70  # Via values -> 400 (RFC 3261 §16.6 loops end at Max-Forwards 70)
    max_request_uri: int = 4096  # octets of the Request-URI -> 414
    max_body: int = 65535  # octets of Content-Length -> 413


DATAGRAM_LIMITS = ParseLimits()
STREAM_LIMITS = ParseLimits(max_message_size=1 << 20, max_body=1 << 20)


class _MessageAccessors:
    """Typed accessors shared by requests and responses (RFC 3261 §20)."""

    headers: Headers
    body: bytes
    _typed: dict[tuple[str, str], object]
    _parsed: tuple[dict[str, list[str]], Headers] | None

    def parsed_fields(self) -> dict[str, list[str]] | None:
        """The values of the fields the parser checked (Via, From, To, Call-ID, CSeq,
        Max-Forwards, Contact, Content-Length) and noted (Require, Replaces,
        Record-Route, Session-Expires), by lower-case long name in wire order - or None
        when the message was not parsed or its header list has changed since.

        Lets the transaction layer read what it matches on (RFC 3261 §17.2.3) without
        another pass over the header list.  Treat the result as read-only."""
        parsed = self._parsed
        if parsed is None:
            return None
        grouped, headers = parsed
        # Any change to the table (or a new table) makes them stale.
        if self.headers is headers and headers.changes == 0:
            return grouped
        return None

    def _typed_value(self, kind: str, value: str, parse: Callable[[str], T]) -> T:
        """``parse(value)``, remembered per message so that an accessor used again (or
        after validation in `parse_message`) does not parse again.  Treat the returned
        values as immutable."""
        key = (kind, value)
        found = self._typed.get(key)
        if found is None:
            found = parse(value)
            if len(self._typed) < 512:
                self._typed[key] = found
        return cast(T, found)

    def _single(self, name: str) -> str:
        values = self.headers.get_all(name)
        if len(values) != 1:
            problem = "missing" if not values else "more than one"
            raise SipParseError(f"{problem} {name} header")
        return values[0]

    @property
    def vias(self) -> list[Via]:
        """Via values, top first (RFC 3261 §20.42)."""
        return [self._typed_value("via", v, Via.parse) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        """The first Via value; SipParseError when there is none."""
        value = self.headers.get("Via")
        if value is None:
            raise SipParseError("missing Via header")
        return self._typed_value("via", value, Via.parse)

    @property
    def from_(self) -> NameAddr:
        """The From value with its tag (RFC 3261 §20.20)."""
        return self._typed_value("name-addr", self._single("From"), NameAddr.parse)

    @property
    def to(self) -> NameAddr:
        """The To value with its tag (RFC 3261 §20.39)."""
        return self._typed_value("name-addr", self._single("To"), NameAddr.parse)

    @property
    def call_id(self) -> str:
        """The Call-ID (RFC 3261 §20.8)."""
        return self._single("Call-ID").strip(" \t")

    @property
    def cseq(self) -> CSeq:
        """The CSeq (RFC 3261 §20.16)."""
        return self._typed_value("cseq", self._single("CSeq"), CSeq.parse)

    @property
    def contacts(self) -> list[NameAddr]:
        """Contact values; a ``*`` is a NameAddr with ``wildcard`` set (RFC 3261 §20.10)."""
        return [
            self._typed_value("name-addr", v, NameAddr.parse)
            for v in self.headers.get_all("Contact")
        ]

    @property
    def route(self) -> list[NameAddr]:
        """Route values in order (RFC 3261 §20.34)."""
        return [
            self._typed_value("name-addr", v, NameAddr.parse) for v in self.headers.get_all("Route")
        ]

    @property
    def record_route(self) -> list[NameAddr]:
        """Record-Route values in order (RFC 3261 §20.30)."""
        return [
            self._typed_value("name-addr", v, NameAddr.parse)
            for v in self.headers.get_all("Record-Route")
        ]

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards, or None when absent (RFC 3261 §20.22)."""
        value = self.headers.get("Max-Forwards")
        return None if value is None else parse_max_forwards(value)

    @property
    def expires(self) -> int | None:
        """The Expires header in seconds, or None (RFC 3261 §20.19)."""
        value = self.headers.get("Expires")
        return None if value is None else parse_delta_seconds(value, "Expires")

    @property
    def date(self) -> datetime | None:
        """The Date header as an aware UTC datetime, or None (RFC 3261 §20.17)."""
        value = self.headers.get("Date")
        return None if value is None else parse_sip_date(value)

    @property
    def content_type(self) -> str | None:
        """The media type of the body, lower-cased, without parameters (RFC 3261 §20.15)."""
        value = self.headers.get("Content-Type")
        return None if value is None else value.split(";", 1)[0].strip(" \t").lower()

    @property
    def supported(self) -> list[str]:
        """Supported option tags (RFC 3261 §20.37)."""
        return parse_token_list(self.headers.get_all("Supported"), "Supported")

    @property
    def require(self) -> list[str]:
        """Require option tags (RFC 3261 §20.32)."""
        return parse_token_list(self.headers.get_all("Require"), "Require")

    @property
    def proxy_require(self) -> list[str]:
        """Proxy-Require option tags (RFC 3261 §20.29)."""
        return parse_token_list(self.headers.get_all("Proxy-Require"), "Proxy-Require")

    @property
    def allow(self) -> list[str]:
        """Allowed methods (RFC 3261 §20.5)."""
        return parse_token_list(self.headers.get_all("Allow"), "Allow")

    @property
    def refer_to(self) -> NameAddr | None:
        """Refer-To (RFC 3515 §2.1); an embedded ``?Replaces=`` is in ``uri.headers``."""
        value = self.headers.get("Refer-To")
        return None if value is None else NameAddr.parse(value)

    @property
    def refer_to_replaces(self) -> Replaces | None:
        """The Replaces embedded in the Refer-To URI (``?Replaces=...``, RFC 3891 §7),
        or None when there is no Refer-To or it carries none."""
        refer_to = self.refer_to
        if refer_to is None:
            return None
        for name, value in refer_to.uri.headers.items():
            if name.lower() == "replaces":
                return Replaces.parse(value)
        return None

    @property
    def referred_by(self) -> NameAddr | None:
        """Referred-By (RFC 3892 §3)."""
        value = self.headers.get("Referred-By")
        return None if value is None else NameAddr.parse(value)

    @property
    def replaces(self) -> Replaces | None:
        """Replaces (RFC 3891 §6.1)."""
        value = self.headers.get("Replaces")
        return None if value is None else Replaces.parse(value)

    @property
    def event(self) -> Event | None:
        """Event (RFC 6665 §8.4)."""
        value = self.headers.get("Event")
        return None if value is None else Event.parse(value)

    @property
    def subscription_state(self) -> SubscriptionState | None:
        """Subscription-State (RFC 6665 §8.4)."""
        value = self.headers.get("Subscription-State")
        return None if value is None else SubscriptionState.parse(value)

    @property
    def session_expires(self) -> SessionExpires | None:
        """Session-Expires (RFC 4028 §4)."""
        value = self.headers.get("Session-Expires")
        return None if value is None else SessionExpires.parse(value)

    @property
    def www_authenticate(self) -> list[AuthChallenge]:
        """WWW-Authenticate challenges (RFC 3261 §20.44)."""
        return [AuthChallenge.parse(v) for v in self.headers.get_all("WWW-Authenticate")]

    @property
    def proxy_authenticate(self) -> list[AuthChallenge]:
        """Proxy-Authenticate challenges (RFC 3261 §20.27)."""
        return [AuthChallenge.parse(v) for v in self.headers.get_all("Proxy-Authenticate")]

    @property
    def authorization(self) -> list[AuthCredentials]:
        """Authorization credentials (RFC 3261 §20.7)."""
        return [AuthCredentials.parse(v) for v in self.headers.get_all("Authorization")]

    @property
    def proxy_authorization(self) -> list[AuthCredentials]:
        """Proxy-Authorization credentials (RFC 3261 §20.28)."""
        return [AuthCredentials.parse(v) for v in self.headers.get_all("Proxy-Authorization")]

    def _head_and_body(self, start_line: str) -> bytes:
        lines = [start_line]
        lines += [f"{n}: {v}" for n, k, v in self.headers._items if k != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}\r\n\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body


@dataclass(eq=True)
class Request(_MessageAccessors):
    """A SIP request (RFC 3261 §7.1)."""

    method: str
    uri: SipUri
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    _typed: dict[tuple[str, str], object] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _parsed: tuple[dict[str, list[str]], Headers] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __init__(self, method: str, uri: SipUri, headers: Headers | None = None,
                 body: bytes = b"") -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        self.method = method
        self.uri = uri
        self.headers = Headers() if headers is None else headers
        self.body = body
        self._typed = {}
        self._parsed = None

    def __bytes__(self) -> bytes:
        method = self.method
        if method not in KNOWN_METHODS and not g.TOKEN_RE.fullmatch(method):
            raise SipUsageError(f"method {method!r} is not a token")
        uri = str(self.uri)
        if uri not in _CHECKED_URIS:
            if _URI_FORBIDDEN_RE.search(uri):
                raise SipUsageError("Request-URI with white space or control characters")
            if len(_CHECKED_URIS) >= 512:
                _CHECKED_URIS.clear()
            _CHECKED_URIS.add(uri)
        return self._head_and_body(f"{method} {uri} {SIP_VERSION}")


@dataclass(eq=True)
class Response(_MessageAccessors):
    """A SIP response (RFC 3261 §7.2)."""

    status: int
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    _typed: dict[tuple[str, str], object] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _parsed: tuple[dict[str, list[str]], Headers] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __init__(self, status: int, reason: str = "", headers: Headers | None = None,
                 body: bytes = b"") -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        self.status = status
        self.reason = reason
        self.headers = Headers() if headers is None else headers
        self.body = body
        self._typed = {}
        self._parsed = None

    def __bytes__(self) -> bytes:
        if not 100 <= self.status <= 699 or "\r" in self.reason or "\n" in self.reason:
            raise SipUsageError(f"bad status line {self.status} {self.reason!r}")
        return self._head_and_body(f"{SIP_VERSION} {self.status} {self.reason}")


def make_response(
    request: Request | PartialMessage,
    status: int,
    reason: str | None = None,
    to_tag: str | None = None,
) -> Response:
    """A response to ``request`` per RFC 3261 §8.2.6: Via, From, To, Call-ID and CSeq
    copied; ``to_tag`` added to To when it has none and the status is not 100.

    Works on a `PartialMessage` too, to answer a malformed request with 400.
    """
    # One pass over the request's fields; their values were checked when they entered
    # it (parser or `Headers.add`), so they are copied as they are.
    copied: dict[str, list[tuple[str, str, str]]] = {key: [] for key in _RESPONSE_COPIED}
    for entry in request.headers._items:  # never a packed list: no key of these is one
        found = copied.get(entry[1])
        if found is not None:
            found.append(entry)
    tos = copied["to"]
    if to_tag is not None and status != StatusCode.TRYING:
        copied["to"] = [(name, key, _with_to_tag(value, to_tag)) for name, key, value in tos]
    items = [*copied["via"], *copied["from"], *copied["to"], *copied["call-id"], *copied["cseq"]]
    if status == StatusCode.TRYING:
        items += copied["timestamp"]  # RFC 3261 §8.2.6.1
    return Response(
        status,
        reason if reason is not None else reason_phrase(status),
        Headers._from_normalised(items),
    )


_RESPONSE_COPIED = ("via", "from", "to", "call-id", "cseq", "timestamp")


def _with_to_tag(value: str, to_tag: str) -> str:
    """``value`` with ``;tag=`` added unless it has one (RFC 3261 §8.2.6.2)."""
    if (
        '"' not in value
        and "tag" not in value[value.rfind(">") + 1 :].lower()
        and g.name_addr_syntax_ok(value)
    ):
        return f"{value};tag={to_tag}"  # valid, and no header parameter can be a tag
    try:
        to = NameAddr.parse(value)
    except SipParseError:
        return value
    return value if to.tag is not None else f"{value};tag={to_tag}"


# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------

_URI_FORBIDDEN_RE = re.compile(r"[\x00-\x20\x7f]")
# Request-URI texts that passed the check above (bounded, cleared when full): a UA
# sends its requests to the same few URIs.
_CHECKED_URIS: set[str] = set()
_ANSWER_HEADERS = frozenset({"via", "from", "to", "call-id", "cseq"})
_BARE_NUL_RE = re.compile(r"(?<!\\)\x00")


def parse_message(
    data: bytes, *, limits: ParseLimits = DATAGRAM_LIMITS, datagram: bool = True
) -> Request | Response:
    """Parse one SIP message (RFC 3261 §7, §18.3).

    With ``datagram`` set, Content-Length is optional and octets past it are discarded
    (RFC 3261 §18.3, RFC 4475 §3.1.1.8); a Content-Length larger than the body is 400
    (RFC 4475 §3.1.2.2).  Raises only `SipParseError`.
    """
    try:
        return _parse(data, limits, datagram)
    except SipParseError:
        raise
    except (ValueError, IndexError, UnicodeError, OverflowError) as exc:  # defensive
        raise SipParseError(f"malformed message ({type(exc).__name__})") from exc


def _parse(data: bytes, limits: ParseLimits, datagram: bool) -> Request | Response:
    data = data.lstrip(b"\r\n")  # RFC 3261 §7.5: ignore CRLF before the start-line
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        if data.endswith(b"\r\n") and datagram:
            head_end = len(data) - 2  # datagram without the empty line: tolerate
        else:
            raise SipParseError("no end of header fields (missing empty line)")
        body = b""
    else:
        body = data[head_end + 4 :]
    if head_end > limits.max_message_size:
        raise SipParseError("message too large", StatusCode.MESSAGE_TOO_LARGE)
    head = data[:head_end].decode("utf-8", "surrogateescape")
    if "\x00" in head and _BARE_NUL_RE.search(head):
        raise SipParseError("NUL octet in header section")  # only as a quoted-pair
    lines = head.split("\r\n")
    if head.count("\n") != len(lines) - 1 or head.count("\r") != len(lines) - 1:
        raise SipParseError("bare CR or LF in header section")
    start_line = lines[0]
    is_response = start_line[:4].upper() == "SIP/"
    try:
        if len(data) > limits.max_message_size:
            raise SipParseError("message too large", StatusCode.MESSAGE_TOO_LARGE)
        if len(lines) - 1 > limits.max_headers:
            raise SipParseError("too many header fields")
        try:
            fields = _header_fields(lines, limits, len(head))
        except SipParseError:
            if "\r\n " not in head and "\r\n\t" not in head:
                raise
            fields = None  # a folded line may have looked broken before unfolding
        if fields is None:  # a continuation line: unfold, then split again
            lines = _unfold(lines, limits)
            fields = _header_fields(lines, limits, len(head))
            if fields is None:  # pragma: no cover - _unfold leaves no continuation line
                raise SipParseError("continuation line after unfolding")
        items, grouped, packed = fields
        headers = Headers._from_normalised(items, packed)
        body = _frame_body(grouped.get("content-length"), body, limits, datagram)
        if is_response:
            message: Request | Response = _response(start_line, headers, body)
        else:
            message = _request(start_line, headers, body, limits)
        _check_core_headers(message, grouped, limits)
        message._parsed = (grouped, headers)
        return message
    except SipParseError as exc:
        method = "" if is_response else start_line.split(" ", 1)[0]
        if is_response or method == "ACK" or not g.TOKEN_RE.fullmatch(method):
            raise  # RFC 3261 §17.1.3/§18.1.2: a broken response is dropped; never answer ACK
        raw = _lenient_header_fields(lines, limits)
        raise exc.with_partial(_partial(method, raw)) from None


def _unfold(lines: list[str], limits: ParseLimits) -> list[str]:
    """Join continuation lines to their field, folding LWS to one SP (RFC 3261 §7.3.1)."""
    out = [lines[0]]
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if len(out) == 1:
                raise SipParseError("continuation line before the first header field")
            folded = line.strip(" \t")
            if folded:
                out[-1] = out[-1].rstrip(" \t") + " " + folded
            if len(out[-1]) > limits.max_header_line:
                raise SipParseError("header field too long")
        else:
            out.append(line)
    return out


# Checked by `_check_core_headers`, plus the presence flags RequestFacts wants.
_CORE_KEYS = frozenset(
    {"via", "from", "to", "call-id", "cseq", "max-forwards", "contact", "content-length",
     "require", "replaces", "record-route", "session-expires"}
)


def _name_info(name: str) -> tuple[str, str, bool, bool]:
    """(canonical name, lower-case key, is a list field, is grouped for the checks) of
    a header field name."""
    canon = CANONICAL_NAMES.get(name.lower(), name)
    key = canon.lower()
    return canon, key, key in LIST_HEADERS, key in _CORE_KEYS


# Every spelling we expect on the wire (canonical, lower-case, compact) -> its info.
_NAME_INFO: dict[str, tuple[str, str, bool, bool]] = {}
for _lower, _canon in CANONICAL_NAMES.items():
    for _form in (_lower, _canon, _lower.upper(), _canon.upper()):
        _NAME_INFO[_form] = _name_info(_canon)


# Header lines seen before -> the one entry they gave and its kind.  A peer repeats
# most lines verbatim in every request (Max-Forwards, Route, Contact, Allow, Supported,
# User-Agent, Content-Type ...), and within a call its From, Call-ID and (once tagged)
# To lines come back in the ACK and BYE (RFC 3261 §12.2.1.1), so these skip the split,
# name lookup and strip.  Via lines are never remembered (each transaction has its own
# branch, §8.1.1.7, and a retransmission is absorbed before parsing), nor long ones;
# bounded, cleared when full (the steady lines are then learnt again at one miss each),
# so hostile input cannot grow it.  Entries are immutable tuples, shared between
# messages like the values in them; only the splitting is remembered, the values are
# still checked by `_check_core_headers` in every message.
_PLAIN_ENTRY, _CORE_ENTRY, _PACKED_ENTRY = 0, 1, 2
_LINE_MEMORY: dict[str, tuple[tuple[str, str, str], int]] = {}
_LINE_MEMORY_SIZE = 4096
_LINE_MEMORY_MAX_LINE = 256


def _remember_line(line: str, entry: tuple[str, str, str], kind: int) -> None:
    if len(line) > _LINE_MEMORY_MAX_LINE:
        return
    if len(_LINE_MEMORY) >= _LINE_MEMORY_SIZE:
        _LINE_MEMORY.clear()
    _LINE_MEMORY[line] = (entry, kind)


def _header_fields(
    lines: list[str], limits: ParseLimits, head_length: int
) -> tuple[list[tuple[str, str, str]], dict[str, list[str]], bool] | None:
    """Split ``field-name HCOLON field-value`` lines (RFC 3261 §7.3.1) into
    (canonical name, key, value) entries, list fields one element each, and group the
    values of the fields `_check_core_headers` needs.  A plain list of a
    `PACKABLE_LIST_HEADERS` field that `plain_list_ok` accepts stays one entry (the
    third result says whether there is one): `Headers` splits it when it is read.

    Returns None at the first continuation line (RFC 3261 §7.3.1 folding): the caller
    unfolds and calls again.  Folding is rare, so it is found here, on the path a line
    with an unknown name takes anyway, rather than by searching the header block."""
    items: list[tuple[str, str, str]] = []
    append = items.append
    grouped: dict[str, list[str]] = {}
    packed = False
    max_line = limits.max_header_line
    check_length = head_length > max_line
    remembered = _LINE_MEMORY.get
    for line in lines[1:]:
        if check_length and len(line) > max_line:
            raise SipParseError("header field too long")
        known = remembered(line)
        if known is not None:
            entry, kind = known
            append(entry)
            if kind == _CORE_ENTRY:
                found = grouped.get(entry[1])
                if found is None:
                    grouped[entry[1]] = [entry[2]]
                else:
                    found.append(entry[2])
            elif kind == _PACKED_ENTRY:
                packed = True
            continue
        name, colon, value = line.partition(":")
        info = _NAME_INFO.get(name)
        if info is None or not colon:
            if line[:1] in (" ", "\t"):
                return None
            name = name.rstrip(" \t")
            if not colon or not g.TOKEN_RE.fullmatch(name):
                raise SipParseError(f"malformed header field line {line[:40]!r}")
            info = _NAME_INFO.get(name) or _name_info(name)
        canon, key, is_list, is_core = info
        value = value.strip(" \t")
        if not is_list or ("," not in value and value):
            entry = (canon, key, value)
            append(entry)
            if is_core:
                found = grouped.get(key)
                if found is None:
                    grouped[key] = [value]
                else:
                    found.append(value)
            if key != "via":
                _remember_line(line, entry, _CORE_ENTRY if is_core else _PLAIN_ENTRY)
            continue
        if key in PACKABLE_LIST_HEADERS and value and plain_list_ok(value):
            entry = (canon, key, value)
            append(entry)
            packed = True
            _remember_line(line, entry, _PACKED_ENTRY)
            continue
        for element in g.split_top_level(value, ","):
            stripped = element.strip(" \t")
            if not stripped:
                raise SipParseError(f"empty element in {canon} header")
            append((canon, key, stripped))
            if is_core:
                grouped.setdefault(key, []).append(stripped)
    return items, grouped, packed


def _lenient_header_fields(lines: list[str], limits: ParseLimits) -> list[tuple[str, str]]:
    """The well-formed, unfolded header lines only: to find what a 400 must copy."""
    fields: list[tuple[str, str]] = []
    for line in lines[1 : limits.max_headers + 1]:
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip(' ')}")
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if colon and g.TOKEN_RE.fullmatch(name) and len(line) <= limits.max_header_line:
            fields.append((name, value.strip(" \t")))
    return fields


def _partial(method: str, raw: list[tuple[str, str]]) -> PartialMessage | None:
    """What a 400 to a malformed request copies (RFC 3261 §8.2.6), or None to drop.

    A response travels back along the Via path (RFC 3261 §18.2.2), so a request without
    Via cannot be answered; otherwise the Via, From, To, Call-ID and CSeq fields present
    are kept as received (RFC 4475 §3.3.1 and §3.3.8 still expect a 400).
    """
    kept = [
        (name, value)
        for name, value in raw
        if CANONICAL_NAMES.get(name.lower(), name).lower() in _ANSWER_HEADERS
    ]
    if not any(CANONICAL_NAMES.get(name.lower()) == "Via" for name, _ in kept):
        return None
    return PartialMessage(method, Headers(kept))


_NO_BODY = ["0"]


def _frame_body(
    values: list[str] | None, body: bytes, limits: ParseLimits, datagram: bool
) -> bytes:
    """Content-Length framing (RFC 3261 §18.3, §20.14; RFC 4475 §3.1.2.2, §3.1.2.3)."""
    if not values:
        if not datagram and body:
            raise SipParseError("missing Content-Length on a stream transport")
        return body
    if values == _NO_BODY:  # "Content-Length: 0" (every ACK, BYE and 200 to BYE)
        return b""  # octets past it are not the message (RFC 3261 §18.3)
    if len(values) > 1:
        raise SipParseError("more than one Content-Length header")
    text = values[0]
    if not text.isdigit() or not text.isascii():
        raise SipParseError("bad Content-Length value")
    length = int(text)
    if length > limits.max_body:
        raise SipParseError("body too large", StatusCode.REQUEST_ENTITY_TOO_LARGE)
    if length > len(body):
        raise SipParseError("Content-Length larger than the message body")
    return body[:length] if length < len(body) else body


# Request-Lines seen before -> (method, Request-URI, length of its text).  A peer sends
# the same Request-Line for every call (SIPp: ``INVITE sip:service@host:port SIP/2.0``),
# so this saves the line and URI regexes; bounded, cleared when full.  The SipUri
# values are shared between messages: like every parsed value, treat them as immutable.
_REQUEST_LINE_CACHE: dict[str, tuple[str, SipUri, int]] = {}
_REQUEST_LINE_CACHE_SIZE = 512


def _request(start_line: str, headers: Headers, body: bytes, limits: ParseLimits) -> Request:
    """``Request-Line = Method SP Request-URI SP SIP-Version CRLF`` (RFC 3261 §7.1)."""
    cached = _REQUEST_LINE_CACHE.get(start_line)
    if cached is not None and cached[2] <= limits.max_request_uri:
        return Request(cached[0], cached[1], headers, body)
    request = _parse_request_line(start_line, headers, body, limits)
    if len(_REQUEST_LINE_CACHE) >= _REQUEST_LINE_CACHE_SIZE:
        _REQUEST_LINE_CACHE.clear()
    _REQUEST_LINE_CACHE[start_line] = (request.method, request.uri,
                                       len(start_line) - len(request.method) - 9)
    return request


def _parse_request_line(
    start_line: str, headers: Headers, body: bytes, limits: ParseLimits
) -> Request:
    """The Request-Line without the cache (RFC 3261 §7.1, §25.1)."""
    match = g.REQUEST_LINE_RE.fullmatch(start_line)
    if not match:
        raise SipParseError(_request_line_problem(start_line))
    method, uri_text, version = match.groups()
    if version.upper() != SIP_VERSION:
        raise SipParseError(
            f"SIP version {version} not supported", StatusCode.VERSION_NOT_SUPPORTED
        )
    if uri_text.startswith("<"):
        raise SipParseError("Request-URI enclosed in <>")  # RFC 4475 §3.1.2.7
    uri = parse_request_uri(uri_text, limits.max_request_uri)
    if uri.headers:
        raise SipParseError("Request-URI contains escaped headers")  # RFC 4475 §3.1.2.11
    return Request(method, uri, headers, body)


def _request_line_problem(start_line: str) -> str:
    """Name what is wrong with a Request-Line (RFC 4475 §3.1.2.7 - §3.1.2.10)."""
    if start_line.endswith((" ", "\t")):
        return "SP characters at end of Request-Line"
    if "  " in start_line:
        return "multiple SP separating Request-Line elements"
    parts = start_line.split(" ")
    if len(parts) > 3:
        return "white space inside Request-URI"
    if len(parts) < 3:
        return "Request-Line without Request-URI or SIP-Version"
    if not g.TOKEN_RE.fullmatch(parts[0]):
        return "method is not a token"
    return "malformed Request-Line"


def _response(start_line: str, headers: Headers, body: bytes) -> Response:
    """``Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF`` (RFC 3261 §7.2)."""
    match = g.STATUS_LINE_RE.fullmatch(start_line)
    if not match:
        raise SipParseError("malformed Status-Line")
    version, code, reason = match.groups()
    if version.upper() != SIP_VERSION:
        raise SipParseError(f"SIP version {version} not supported")
    if len(code) != 3 or not 100 <= int(code) <= 699:
        raise SipParseError("status code out of range")
    return Response(int(code), reason, headers, body)


_SINGLE_CORE_FIELDS = (("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq"))
# CSeq values seen before (CSeq is immutable): "1 INVITE", "2 BYE" recur every call.
_CSEQ_CACHE: dict[str, CSeq] = {}
_CSEQ_CACHE_SIZE = 1024


def _cseq(value: str) -> CSeq:
    """`CSeq.parse` (RFC 3261 §20.16) with a bounded cache of the values it accepted."""
    found = _CSEQ_CACHE.get(value)
    if found is None:
        found = CSeq.parse(value)
        if len(_CSEQ_CACHE) >= _CSEQ_CACHE_SIZE:
            _CSEQ_CACHE.clear()
        _CSEQ_CACHE[value] = found
    return found


def _raise_single_field_problem(grouped: dict[str, list[str]]) -> NoReturn:
    """Name the first of From, To, Call-ID, CSeq that is missing or repeated."""
    for key, name in _SINGLE_CORE_FIELDS:
        count = len(grouped.get(key, ()))
        if count != 1:
            raise SipParseError(f"{'missing' if count == 0 else 'more than one'} {name} header")
    raise SipParseError("missing From, To, Call-ID or CSeq header")  # pragma: no cover


def _check_core_headers(
    message: Request | Response, grouped: dict[str, list[str]], limits: ParseLimits
) -> None:
    """Parse the fields transactions depend on (RFC 3261 §8.1.1, §8.2, §16.3), in a
    fixed order so that the reason names the first problem of RFC 4475's lists; the
    typed values are kept for the accessors."""
    vias = grouped.get("via")
    if not vias:
        raise SipParseError("missing Via header")
    if len(vias) > limits.max_vias:
        raise SipParseError("too many Via headers")
    typed = message._typed_value
    for value in vias:
        if not g.via_syntax_ok(value):
            typed("via", value, Via.parse)
    get = grouped.get
    froms, tos, call_ids, cseqs = get("from"), get("to"), get("call-id"), get("cseq")
    if not (froms and tos and call_ids and cseqs) or (
        len(froms) + len(tos) + len(call_ids) + len(cseqs) != 4
    ):
        _raise_single_field_problem(grouped)
    if not g.name_addr_syntax_ok(froms[0]):
        typed("name-addr", froms[0], NameAddr.parse)
    if not g.name_addr_syntax_ok(tos[0]):
        typed("name-addr", tos[0], NameAddr.parse)
    if not g.CALL_ID_RE.fullmatch(call_ids[0]):
        raise SipParseError("bad Call-ID header")
    cseq = _cseq(cseqs[0])
    message._typed[("cseq", cseqs[0])] = cseq  # for the accessor and RequestFacts
    if isinstance(message, Request) and cseq.method != message.method:
        if message.method not in KNOWN_METHODS:
            raise SipParseError(
                f"method {message.method} not implemented", StatusCode.NOT_IMPLEMENTED
            )
        raise SipParseError("CSeq method does not match the Request-Line method")
    max_forwards = grouped.get("max-forwards", ())
    if len(max_forwards) > 1:
        raise SipParseError("more than one Max-Forwards header")
    if max_forwards:
        parse_max_forwards(max_forwards[0])
    for value in grouped.get("contact", ()):
        if value != "*" and not g.name_addr_syntax_ok(value):
            typed("name-addr", value, NameAddr.parse)
