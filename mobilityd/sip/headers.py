"""The header-field table of a SIP message and typed header values.

`Headers` is the ordered, case-insensitive multi-dict of a message (RFC 3261 §7.3):
compact forms (RFC 3261 §7.3.3 and the extensions' own) are normalised to the long
names, and the fields whose grammar is a comma-separated list (§7.3.1) are stored one
value per entry.  The typed values (`Via`, `CSeq`, `Replaces`, `Event`,
`SubscriptionState`, `AuthChallenge` / `AuthCredentials`, `SessionExpires`) each
have ``parse(text)`` and ``__str__`` and raise `SipParseError` on bad input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from mobilityd.sip import grammar as g
from mobilityd.sip.errors import SipParseError, SipUsageError
from mobilityd.sip.uri import format_host, parse_host, parse_port

# RFC 3261 §7.3.3 and §20; RFC 3515 §2.1 (r); RFC 3892 §3 (b); RFC 6665 §8.4 (o, u);
# RFC 4028 §4 (x); RFC 3841 (j, d, a); RFC 4488 / 3903 (not compact).
COMPACT_FORMS: dict[str, str] = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "r": "Refer-To",
    "b": "Referred-By",
    "o": "Event",
    "x": "Session-Expires",
    "u": "Allow-Events",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "y": "Identity",
}

# fmt: off
_KNOWN_NAMES = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "Identity",
    "In-Reply-To", "Max-Forwards", "Min-Expires", "Min-SE", "MIME-Version", "Organization",
    "P-Asserted-Identity", "Path", "Priority", "Proxy-Authenticate", "Proxy-Authorization",
    "Proxy-Require", "RAck", "Reason", "Record-Route", "Refer-To", "Referred-By",
    "Reject-Contact", "Replaces", "Reply-To", "Request-Disposition", "Require", "Retry-After",
    "Route", "RSeq", "Server", "Service-Route", "Session-Expires", "SIP-ETag", "SIP-If-Match",
    "Subject", "Subscription-State", "Supported", "Timestamp", "To", "Unsupported",
    "User-Agent", "Via", "Warning", "WWW-Authenticate",
]
# fmt: on
CANONICAL_NAMES: dict[str, str] = {name.lower(): name for name in _KNOWN_NAMES}
CANONICAL_NAMES.update(COMPACT_FORMS)

# Fields whose value is a comma-separated list (RFC 3261 §7.3.1, §20).  Authentication
# fields are not: their single value has commas inside (RFC 3261 §7.3.1, RFC 7616).
# fmt: off
LIST_HEADERS = frozenset(
    name.lower()
    for name in (
        "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
        "Allow-Events", "Call-Info", "Contact", "Content-Encoding", "Content-Language",
        "Error-Info", "In-Reply-To", "P-Asserted-Identity", "Path", "Proxy-Require",
        "Record-Route", "Reject-Contact", "Require", "Route", "Service-Route", "Supported",
        "Unsupported", "Via", "Warning",
    )
)
# fmt: on


def canonical_name(name: str) -> str:
    """The long, conventionally capitalised name of a header field (RFC 3261 §7.3.3)."""
    return CANONICAL_NAMES.get(name.lower(), name)


# The usual spellings of the known names (as listed, lower-case, upper-case, compact)
# -> (canonical name, lower-case key): one dict lookup instead of two case changes.
_SPELLINGS: dict[str, tuple[str, str]] = {}
for _key, _canon in CANONICAL_NAMES.items():
    for _form in (_key, _canon, _key.upper()):
        _SPELLINGS[_form] = (_canon, _canon.lower())


def _key_of(name: str) -> str:
    """The lower-case long name a field is stored under (RFC 3261 §7.3.3, §7.3.5)."""
    known = _SPELLINGS.get(name)
    return known[1] if known is not None else canonical_name(name).lower()


def _checked_name(name: str, value: str) -> tuple[str, str]:
    """(canonical name, key), after refusing what would not serialise as one header
    field (RFC 3261 §7.3.1: field-name is a token; a value never contains CR or LF)."""
    known = _SPELLINGS.get(name)
    if known is None:
        canon = CANONICAL_NAMES.get(name.lower())
        if canon is None:
            if not g.TOKEN_RE.fullmatch(name):
                raise SipUsageError(f"header name {name!r} is not a token")
            canon = name
        known = (canon, canon.lower())
    if "\r" in value or "\n" in value:
        raise SipUsageError(f"CR or LF in the value of {known[0]}")
    return known


# List fields the parser may keep as one comma-separated value until the list is read
# (RFC 3261 §7.3.1 allows either form on the wire): option tags, methods, codings and
# languages - plain tokens, never read by the transaction layer.
PACKABLE_LIST_HEADERS = frozenset(
    {"accept", "accept-encoding", "accept-language", "allow", "allow-events",
     "content-encoding", "content-language", "in-reply-to", "supported", "unsupported"}
)


def plain_list_ok(value: str) -> bool:
    """True when ``value`` (stripped, with a comma) splits on commas into non-empty
    elements with no quoted-string or ``<...>`` (RFC 3261 §7.3.1) - exactly what the
    element-by-element split would accept without raising."""
    if '"' in value or "<" in value:
        return False
    squeezed = value.replace(" ", "")
    if "\t" in squeezed:
        squeezed = squeezed.replace("\t", "")
    return not (",," in squeezed or squeezed[0] == "," or squeezed[-1] == ",")


class Headers:
    """Ordered multi-dict of header fields, case-insensitive, compact names expanded.

    Iterating yields ``(name, value)`` pairs in wire order; a list field (RFC 3261
    §7.3.1) yields one pair per element.  A parsed message may hold a plain list field
    (`PACKABLE_LIST_HEADERS`) as the one value it arrived as: it is split into
    elements the first time the table is read or changed, and serialised as it came
    if it never is.
    """

    __slots__ = ("_changes", "_items", "_packed")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        entries: list[tuple[str, str, str]] = []
        append = entries.append
        for name, value in items:
            canon, key = _checked_name(name, value)
            append((canon, key, value))
        self._items = entries
        self._packed = False
        self._changes = 0

    @classmethod
    def _from_normalised(cls, items: list[tuple[str, str, str]], packed: bool = False) -> Headers:
        """Internal fast path: (canonical name, lower-case key, value) triples; with
        ``packed``, entries of `PACKABLE_LIST_HEADERS` with a comma are whole lists
        already checked by `plain_list_ok`."""
        # Headers(), not cls(): a direct call when compiled (mobilityd/sip/__init__.py,
        # "Constructors written out"); not cls.__new__: compiled classes have no such path
        headers = Headers()
        headers._items = items
        headers._packed = packed
        headers._changes = 0
        return headers

    @property
    def changes(self) -> int:
        """How many times the table was changed (add, prepend, set, remove ...)."""
        return self._changes

    def _unpacked(self) -> list[tuple[str, str, str]]:
        """The entries, packed lists split into one entry per element (in place, so
        the list keeps its identity)."""
        items = self._items
        if self._packed:
            self._packed = False
            split: list[tuple[str, str, str]] = []
            for entry in items:
                canon, key, value = entry
                if key in PACKABLE_LIST_HEADERS and "," in value:
                    split += [(canon, key, element.strip(" \t")) for element in value.split(",")]
                else:
                    split.append(entry)
            items[:] = split
        return items

    def _items_for(self, key: str) -> list[tuple[str, str, str]]:
        """The entries, split first only when ``key`` is one a packed list may hold:
        reading or changing any other field leaves the packed lists as they are."""
        if self._packed and key in PACKABLE_LIST_HEADERS:
            return self._unpacked()
        return self._items

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        key = _key_of(name)
        for _, k, value in self._items_for(key):
            if k == key:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order (list fields: one entry per element)."""
        key = _key_of(name)
        return [value for _, k, value in self._items_for(key) if k == key]

    def add(self, name: str, value: str) -> None:
        """Append a field at the end."""
        canon, key = _checked_name(name, value)
        self._items_for(key).append((canon, key, value))
        self._changes += 1

    def prepend(self, name: str, value: str) -> None:
        """Insert a field before all others (a new top Via, RFC 3261 §8.1.1.7)."""
        canon, key = _checked_name(name, value)
        self._items = [(canon, key, value), *self._items_for(key)]
        self._changes += 1

    def set(self, name: str, value: str) -> None:
        """Replace every value of ``name`` by one, at the first one's place."""
        canon, key = _checked_name(name, value)
        self._changes += 1
        items = self._items_for(key)
        for index, (_, k, _) in enumerate(items):
            if k == key:
                items[index] = (canon, key, value)
                self._items = [
                    item for i, item in enumerate(items) if i <= index or item[1] != key
                ]
                return
        items.append((canon, key, value))

    def remove(self, name: str) -> int:
        """Remove every value of ``name``; returns how many were removed."""
        key = _key_of(name)
        items = self._items_for(key)
        before = len(items)
        self._items = [item for item in items if item[1] != key]
        self._changes += 1
        return before - len(self._items)

    def remove_first(self, name: str) -> str | None:
        """Remove and return the first value of ``name`` (top Via, RFC 3261 §18.1.2)."""
        key = _key_of(name)
        items = self._items_for(key)
        for index, (_, k, value) in enumerate(items):
            if k == key:
                self._items = items[:index] + items[index + 1 :]
                self._changes += 1
                return value
        return None

    def copy(self) -> Headers:
        """An independent copy."""
        return Headers._from_normalised(list(self._items), self._packed)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((name, value) for name, _, value in self._unpacked())

    def __len__(self) -> int:
        return len(self._unpacked())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for _, k, v in self._unpacked()] == [
            (k, v) for _, k, v in other._unpacked()
        ]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"


@dataclass(frozen=True)
class PartialMessage:
    """What could still be read from a malformed request: enough to answer it.

    Holds the request method and the five header fields RFC 3261 §8.2.6.2 copies into a
    response (Via, From, To, Call-ID, CSeq), each already checked to be well-formed.
    """

    method: str
    headers: Headers


# ---------------------------------------------------------------------------------------
# Typed values
# ---------------------------------------------------------------------------------------

BRANCH_MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7


@dataclass(frozen=True)
class Via:
    """One Via value: ``sent-protocol LWS sent-by *( SEMI via-params )`` (RFC 3261 §20.42).

    ``transport`` is upper-cased; ``host`` is stored without IPv6 brackets.
    """

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    def __hash__(self) -> int:
        return hash(str(self))

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse one Via value (already split on commas)."""
        text = text.strip(" \t")
        match = g.VIA_RE.match(text)
        if not match:
            raise SipParseError("bad Via header: sent-protocol or sent-by")
        name, version, transport, host, port = match.groups()
        host = _via_host(host)
        rest = text[match.end() :]
        params: dict[str, str | None] = {}
        if rest:
            if not rest.startswith(";"):
                raise SipParseError("bad Via header: junk after sent-by")
            params = g.parse_param_string(rest, "Via")
            _check_via_params(params)
        return cls(
            transport=transport.upper(),
            host=host,
            port=parse_port(port, "Via") if port is not None else None,
            params=params,
            protocol=f"{name.upper()}/{version}",
        )

    def __str__(self) -> str:
        sent_by = format_host(self.host)
        if self.port is not None:
            sent_by += f":{self.port}"
        return f"{self.protocol}/{self.transport} {sent_by}{g.format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        """The transaction-identifying ``branch`` (RFC 3261 §8.1.1.7)."""
        return self.params.get("branch")

    @property
    def has_rfc3261_branch(self) -> bool:
        """True when the branch is the magic cookie plus an identifier (RFC 3261
        §8.1.1.7); False for RFC 2543 peers and for a bare cookie (RFC 4475 §3.2.1)."""
        branch = self.branch
        return branch is not None and branch.startswith(BRANCH_MAGIC_COOKIE) and len(branch) > 7

    @property
    def received(self) -> str | None:
        """The ``received`` source address added by the receiver (RFC 3261 §18.2.1)."""
        value = self.params.get("received")
        return value.strip("[]") if value else None

    @property
    def has_rport(self) -> bool:
        """True when ``rport`` is present, with or without a value (RFC 3581 §3)."""
        return "rport" in self.params

    @property
    def rport(self) -> int | None:
        """The filled-in ``rport`` value (RFC 3581 §4), or None."""
        value = self.params.get("rport")
        return int(value) if value else None

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter (RFC 3261 §18.2.2)."""
        return self.params.get("maddr")

    @property
    def ttl(self) -> int | None:
        """The ``ttl`` parameter (RFC 3261 §20.42)."""
        value = self.params.get("ttl")
        return int(value) if value else None

    def with_params(self, **params: str | None) -> Via:
        """A copy with the given parameters set (None = flag parameter)."""
        merged = dict(self.params)
        merged.update(params)
        return replace(self, params=merged)


def _via_host(text: str) -> str:
    return parse_host(text, "Via")


def _check_via_params(params: dict[str, str | None]) -> None:
    """via-ttl, via-received, via-branch and rport value ranges (RFC 3261 §25.1, RFC 3581)."""
    ttl = params.get("ttl")
    if "ttl" in params and (ttl is None or not ttl.isdigit() or int(ttl) > 255):
        raise SipParseError("bad Via ttl parameter")
    if "branch" in params and not params["branch"]:
        raise SipParseError("bad Via branch parameter")
    received = params.get("received")
    if "received" in params:
        if not received:
            raise SipParseError("bad Via received parameter")
        _via_host(received if ":" not in received or received.startswith("[") else f"[{received}]")
    rport = params.get("rport")
    if rport is not None:
        parse_port(rport, "Via rport")


_CSEQ_RE = re.compile(rf"([0-9]+)[ \t]+({g.TOKEN})")


@dataclass(frozen=True)
class CSeq:
    """``CSeq = 1*DIGIT LWS Method`` (RFC 3261 §20.16); seq must fit 32 bits (§8.1.1.5)."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """Parse a CSeq value."""
        match = _CSEQ_RE.fullmatch(text.strip(" \t"))
        if not match:
            raise SipParseError("bad CSeq header")
        digits = match.group(1)
        if len(digits) > 10 or int(digits) > 2**32 - 1:
            raise SipParseError("CSeq sequence number too large")
        return CSeq(int(digits), match.group(2))

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_delta_seconds(text: str, what: str) -> int:
    """``delta-seconds = 1*DIGIT`` limited to 2**32-1 (RFC 3261 §20.19, RFC 4475 §3.1.2.4)."""
    text = text.strip(" \t")
    if not text.isdigit() or not text.isascii():
        raise SipParseError(f"bad {what} value")
    if len(text) > 10 or int(text) > 2**32 - 1:
        raise SipParseError(f"{what} value too large")
    return int(text)


#   SIP-date = rfc1123-date
#   rfc1123-date = wkday "," SP date1 SP time SP "GMT"       (RFC 3261 §25.1)
_SIP_DATE_RE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def parse_sip_date(text: str) -> datetime:
    """A Date value; only "GMT" is a valid zone (RFC 3261 §20.17, RFC 4475 §3.1.2.12)."""
    match = _SIP_DATE_RE.fullmatch(text.strip(" \t"))
    if not match:
        raise SipParseError("bad Date header (RFC 1123 date in GMT required)")
    _, day, month, year, hour, minute, second = match.groups()
    try:
        return datetime(
            int(year),
            _MONTHS.index(month) + 1,
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise SipParseError("bad Date header (no such date)") from exc


# "0" .. "255" written without leading zeros -> value: one lookup for the usual forms.
_MAX_FORWARDS_VALUES = {str(hops): hops for hops in range(256)}


def parse_max_forwards(text: str) -> int:
    """``Max-Forwards = 1*DIGIT``, 0..255 in practice (RFC 3261 §20.22, RFC 4475 §3.1.2.4)."""
    hops = _MAX_FORWARDS_VALUES.get(text)
    if hops is not None:
        return hops
    text = text.strip(" \t")
    if not text.isdigit() or not text.isascii() or len(text) > 10 or int(text) > 255:
        raise SipParseError("bad Max-Forwards value")  # leading zeros are fine (RFC 4475 §3.1.1.1)
    return int(text)


def parse_token_list(values: Iterable[str], what: str) -> list[str]:
    """Supported / Require / Proxy-Require / Allow / Unsupported lists (RFC 3261 §20)."""
    tokens: list[str] = []
    for value in values:
        for raw_item in value.split(","):
            item = raw_item.strip(" \t")
            if not item:
                continue
            if not g.TOKEN_RE.fullmatch(item):
                raise SipParseError(f"bad {what} token")
            tokens.append(item)
    return tokens


@dataclass(frozen=True)
class Replaces:
    """``Replaces = callid *(SEMI replaces-param)`` (RFC 3891 §6.1)."""

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Replaces:
        """Parse a Replaces value (also the unescaped ``?Replaces=`` of a Refer-To URI)."""
        call_id, *rest = g.split_top_level(text.strip(" \t"), ";")
        call_id = call_id.strip(" \t")
        if not g.CALL_ID_RE.fullmatch(call_id):
            raise SipParseError("bad Replaces call-id")
        params = g.parse_params(rest, "Replaces")
        to_tag = params.pop("to-tag", None)
        from_tag = params.pop("from-tag", None)
        if not to_tag or not from_tag:
            raise SipParseError("Replaces without to-tag and from-tag")
        early = "early-only" in params
        params.pop("early-only", None)
        return cls(call_id, to_tag, from_tag, early, params)

    def __str__(self) -> str:
        out = f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}"
        if self.early_only:
            out += ";early-only"
        return out + g.format_params(self.params)


_EVENT_TYPE_RE = re.compile(rf"{g.TOKEN}")


@dataclass(frozen=True)
class Event:
    """``Event = event-type *( SEMI event-param )`` with ``id`` (RFC 6665 §8.4)."""

    package: str
    id: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Event:
        """Parse an Event (or ``o``) value."""
        package, *rest = g.split_top_level(text.strip(" \t"), ";")
        package = package.strip(" \t")
        if not _EVENT_TYPE_RE.fullmatch(package):
            raise SipParseError("bad Event package")
        params = g.parse_params(rest, "Event")
        event_id = params.pop("id", None)
        return cls(package.lower(), event_id, params)

    def __str__(self) -> str:
        out = self.package
        if self.id is not None:
            out += f";id={self.id}"
        return out + g.format_params(self.params)


@dataclass(frozen=True)
class SubscriptionState:
    """``Subscription-State = substate-value *( SEMI subexp-params )`` (RFC 6665 §8.4)."""

    state: str
    expires: int | None = None
    reason: str | None = None
    retry_after: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SubscriptionState:
        """Parse a Subscription-State value (active, pending, terminated, extension)."""
        state, *rest = g.split_top_level(text.strip(" \t"), ";")
        state = state.strip(" \t")
        if not g.TOKEN_RE.fullmatch(state):
            raise SipParseError("bad Subscription-State value")
        params = g.parse_params(rest, "Subscription-State")
        expires = params.pop("expires", None)
        reason = params.pop("reason", None)
        retry = params.pop("retry-after", None)
        return cls(
            state.lower(),
            parse_delta_seconds(expires, "Subscription-State expires") if expires else None,
            reason.lower() if reason else None,
            parse_delta_seconds(retry, "Subscription-State retry-after") if retry else None,
            params,
        )

    def __str__(self) -> str:
        out = self.state
        if self.expires is not None:
            out += f";expires={self.expires}"
        if self.reason is not None:
            out += f";reason={self.reason}"
        if self.retry_after is not None:
            out += f";retry-after={self.retry_after}"
        return out + g.format_params(self.params)


@dataclass(frozen=True)
class SessionExpires:
    """``Session-Expires = delta-seconds *(SEMI se-params)`` (RFC 4028 §4)."""

    delta: int
    refresher: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SessionExpires:
        """Parse a Session-Expires (or ``x``) value; refresher is ``uac`` or ``uas``."""
        delta, *rest = g.split_top_level(text.strip(" \t"), ";")
        params = g.parse_params(rest, "Session-Expires")
        refresher = params.pop("refresher", None)
        if refresher is not None and refresher.lower() not in ("uac", "uas"):
            raise SipParseError("bad Session-Expires refresher")
        return cls(
            parse_delta_seconds(delta, "Session-Expires"),
            refresher.lower() if refresher else None,
            params,
        )

    def __str__(self) -> str:
        out = str(self.delta)
        if self.refresher is not None:
            out += f";refresher={self.refresher}"
        return out + g.format_params(self.params)


#   auth-param = auth-param-name EQUAL ( token / quoted-string )   (RFC 3261 §25.1)
_AUTH_PARAM_RE = re.compile(
    rf"[ \t]*({g.TOKEN})[ \t]*=[ \t]*({g.QUOTED_STRING}|{g.TOKEN})[ \t]*(,|$)"
)
# Parameters sent as bare tokens (RFC 7616 §3.3, §3.4); all others are quoted.
_BARE_CHALLENGE_PARAMS = frozenset({"algorithm", "stale", "userhash", "charset"})
_BARE_CREDENTIAL_PARAMS = frozenset({"algorithm", "qop", "nc", "userhash", "charset"})


def _parse_auth(text: str, what: str) -> tuple[str, dict[str, str]]:
    text = text.strip(" \t")
    scheme, _, rest = text.partition(" ")
    if not g.TOKEN_RE.fullmatch(scheme):
        raise SipParseError(f"bad {what} scheme")
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip(" \t")
    while pos < len(rest):
        match = _AUTH_PARAM_RE.match(rest, pos)
        if not match:
            raise SipParseError(f"bad {what} parameter")
        name, value = match.group(1).lower(), match.group(2)
        if name in params:
            raise SipParseError(f"duplicate {what} parameter {name}")
        params[name] = g.unquote(value) if value.startswith('"') else value
        pos = match.end()
        if match.group(3) == "," and pos >= len(rest):
            raise SipParseError(f"trailing comma in {what}")
    return scheme, params


def _format_auth(scheme: str, params: dict[str, str], bare: frozenset[str]) -> str:
    items = [f"{k}={v}" if k in bare else f"{k}={g.quote(v)}" for k, v in params.items()]
    return f"{scheme} " + ", ".join(items) if items else scheme


@dataclass(frozen=True)
class AuthChallenge:
    """A WWW-Authenticate / Proxy-Authenticate challenge (RFC 3261 §20.27, §20.44;
    RFC 7616 §3.3).  ``params`` hold unquoted values (realm, nonce, opaque, qop,
    algorithm, stale ...)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> AuthChallenge:
        """Parse a challenge value."""
        scheme, params = _parse_auth(text, "challenge")
        return cls(scheme, params)

    def __str__(self) -> str:
        return _format_auth(self.scheme, self.params, _BARE_CHALLENGE_PARAMS)

    @property
    def qop_options(self) -> list[str]:
        """The offered ``qop`` values (RFC 7616 §3.3)."""
        return [q.strip() for q in self.params.get("qop", "").split(",") if q.strip()]


@dataclass(frozen=True)
class AuthCredentials:
    """An Authorization / Proxy-Authorization value (RFC 3261 §20.7, §20.28;
    RFC 7616 §3.4).  ``params`` hold unquoted values (username, realm, nonce, uri,
    response, algorithm, cnonce, opaque, qop, nc ...)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> AuthCredentials:
        """Parse a credentials value."""
        scheme, params = _parse_auth(text, "credentials")
        return cls(scheme, params)

    def __str__(self) -> str:
        return _format_auth(self.scheme, self.params, _BARE_CREDENTIAL_PARAMS)
