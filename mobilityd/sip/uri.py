"""SIP, SIPS and tel URIs and name-addr values (RFC 3261 §19.1, §20.10, §25.1; RFC 3966).

`SipUri.parse(text)` / `str(uri)` are symmetric.  User, password, parameter values and
embedded header values are stored *unescaped* (RFC 3261 §19.1.2) and escaped again on
output, so `Refer-To: <sip:b@x?Replaces=abc%40h%3Bto-tag%3D1>` yields
``uri.headers["Replaces"] == "abc@h;to-tag=1"``.  IPv6 hosts are stored without
brackets.  Any other absolute URI (``http:``, ``mailto:``, ``urn:`` ...) is kept opaque.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace

from mobilityd.sip import grammar as g
from mobilityd.sip.errors import SipError, SipParseError, StatusCode

SIP_SCHEMES = frozenset({"sip", "sips"})
# Parameters that must match when present in either URI (RFC 3261 §19.1.4).
_STRICT_URI_PARAMS = frozenset({"user", "ttl", "method", "maddr", "transport"})

_URI_DELIMITER_RE = re.compile(r'[ \t\r\n<>"]')

#   SIP-URI = "sip:" [ userinfo ] hostport uri-parameters [ headers ]   (RFC 3261 §25.1)
#   userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"
_SIP_URI_RE = re.compile(
    rf"(?:({g.USER_RE.pattern})(?::({g.PASSWORD_RE.pattern}))?@)?"
    rf"({g.HOST})(?::([0-9]{{1,5}}))?"
    rf"((?:;{g.PARAMCHARS_RE.pattern}(?:={g.PARAMCHARS_RE.pattern})?)*)"
    rf"(?:\?({g.HNV_NONEMPTY}={g.HNV_RE.pattern}(?:&{g.HNV_NONEMPTY}={g.HNV_RE.pattern})*))?"
)
_TEL_CHARS = frozenset("0123456789abcdefABCDEF*#+-.()pwPW")


def parse_host(text: str, what: str) -> str:
    """Validate ``host`` (RFC 3261 §25.1) and return it, IPv6 without brackets."""
    if text.startswith("["):
        if not text.endswith("]"):
            raise SipParseError(f"bad IPv6 reference in {what}")
        try:
            ipaddress.IPv6Address(text[1:-1].split("%", 1)[0])
        except ValueError as exc:
            raise SipParseError(f"bad IPv6 address in {what}") from exc
        return text[1:-1]
    if not g.HOST_RE.fullmatch(text):
        raise SipParseError(f"bad host in {what}")
    if text[-1].isdigit() and g.IPV4_RE.fullmatch(text) and not g.IPV4_STRICT_RE.fullmatch(text):
        raise SipParseError(f"bad IPv4 address in {what}")
    return text


def format_host(host: str) -> str:
    """A host as it appears on the wire: IPv6 addresses get their brackets back."""
    return f"[{host}]" if ":" in host else host


def parse_port(text: str, what: str) -> int:
    """``port = 1*DIGIT`` limited to 0..65535 (RFC 3261 §25.1)."""
    if not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise SipParseError(f"bad port in {what}")
    return int(text)


@dataclass(frozen=True)
class SipUri:
    """A ``sip:``/``sips:`` URI (RFC 3261 §19.1.1), a ``tel:`` URI (RFC 3966) or, with
    ``opaque`` set, any other absolute URI (RFC 3261 §25.1 absoluteURI).

    For ``tel:`` the number is in ``user`` and ``host`` is empty.
    """

    scheme: str
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    opaque: str | None = None
    #: The wire form, built by the first `str()` (an instance never changes).
    _text: str | None = field(default=None, init=False, repr=False, compare=False)

    def __hash__(self) -> int:
        return hash(str(self))

    # -- parsing ---------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a URI; raises SipParseError (RFC 3261 §19.1.1, §25.1)."""
        scheme, colon, rest = text.partition(":")
        if scheme in SIP_SCHEMES:  # the common case, checked by one regex
            return cls._parse_sip(scheme, rest)
        if not colon or not g.SCHEME_RE.fullmatch(scheme):
            raise SipParseError("bad URI: no scheme")
        if _URI_DELIMITER_RE.search(rest):
            raise SipParseError("bad URI: white space or delimiter inside URI")
        scheme = scheme.lower()
        if scheme in SIP_SCHEMES:
            return cls._parse_sip(scheme, rest)
        if scheme == "tel":
            return cls._parse_tel(rest)
        if not rest:
            raise SipParseError("bad URI: empty after scheme")
        return cls(scheme=scheme, opaque=rest)

    @classmethod
    def _parse_sip(cls, scheme: str, rest: str) -> SipUri:
        match = _SIP_URI_RE.fullmatch(rest)
        if match is None:
            return cls._parse_sip_diagnose(scheme, rest)  # raises, naming the problem
        raw_user, raw_password, host, port_text, raw_params, raw_headers = match.groups()
        user = password = None
        if raw_user is not None:
            user = g.unescape(raw_user, "URI user part") if "%" in raw_user else raw_user
            if raw_password is not None:
                password = g.unescape(raw_password, "URI password")
        if host[0] == "[" or host[-1].isdigit():
            host = parse_host(host, "URI")
        port = None
        if port_text is not None:
            port = int(port_text)
            if port > 65535:
                raise SipParseError("bad port in URI")
        params: dict[str, str | None] = {}
        if raw_params:
            params = _parse_uri_params(raw_params[1:].split(";"))
        headers: dict[str, str] = {}
        if raw_headers is not None:
            for item in raw_headers.split("&"):
                name, _, value = item.partition("=")
                headers[g.unescape(name, "URI header")] = g.unescape(value, "URI header")
        return cls(scheme, user, password, host, port, params, headers)

    @classmethod
    def _parse_sip_diagnose(cls, scheme: str, rest: str) -> SipUri:
        """The slow, step-by-step parse: names the problem of a URI the regex refused."""
        if _URI_DELIMITER_RE.search(rest):
            raise SipParseError("bad URI: white space or delimiter inside URI")
        user: str | None = None
        password: str | None = None
        userinfo, at, hostpart = rest.rpartition("@")
        if at:
            raw_user, colon, raw_password = userinfo.partition(":")
            if not raw_user:
                raise SipParseError("bad URI: empty user part")
            if not g.USER_RE.fullmatch(raw_user):
                raise SipParseError("bad URI: illegal character in user part")
            user = g.unescape(raw_user, "URI user part")
            if colon:
                if not g.PASSWORD_RE.fullmatch(raw_password):
                    raise SipParseError("bad URI: illegal character in password")
                password = g.unescape(raw_password, "URI password")
        hostpart, qmark, raw_headers = hostpart.partition("?")
        hostport, *param_parts = hostpart.split(";")
        match = g.HOSTPORT_RE.fullmatch(hostport)
        if not match:
            raise SipParseError("bad URI: bad host or port")
        host = parse_host(match.group(1), "URI")
        port = parse_port(match.group(2), "URI") if match.group(2) is not None else None
        params = _parse_uri_params(param_parts)
        headers: dict[str, str] = {}
        if qmark:
            for item in raw_headers.split("&"):
                name, eq, value = item.partition("=")
                if not name or not eq:
                    raise SipParseError("bad URI: bad embedded header")
                if not g.HNV_RE.fullmatch(name) or not g.HNV_RE.fullmatch(value):
                    raise SipParseError("bad URI: illegal character in embedded header")
                headers[g.unescape(name, "URI header")] = g.unescape(value, "URI header")
        return cls(scheme, user, password, host, port, params, headers)

    @classmethod
    def _parse_tel(cls, rest: str) -> SipUri:
        number, *param_parts = rest.split(";")
        if not number or not all(ch in _TEL_CHARS or ch == "%" for ch in number):
            raise SipParseError("bad tel URI number")
        return cls("tel", user=g.unescape(number, "tel URI"), params=_parse_uri_params(param_parts))

    # -- output ------------------------------------------------------------------
    def __str__(self) -> str:
        """The URI as on the wire, built once per (immutable) instance and remembered:
        a Request-URI, a Contact or a route is formatted again for every message."""
        # (getattr: a mypyc-compiled dataclass leaves an init=False field unset)
        text: str | None = getattr(self, "_text", None)
        if text is None:
            text = self._format()
            object.__setattr__(self, "_text", text)
        return text

    def _format(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        out = [self.scheme, ":"]
        if self.scheme == "tel":
            out.append(g.escape(self.user or "", g.USER_SAFE))
        else:
            if self.user is not None:
                out.append(g.escape(self.user, g.USER_SAFE))
                if self.password is not None:
                    out.append(":" + g.escape(self.password, g.PASSWORD_SAFE))
                out.append("@")
            out.append(format_host(self.host))
            if self.port is not None:
                out.append(f":{self.port}")
        for name, value in self.params.items():
            out.append(f";{g.escape(name, g.PARAM_SAFE)}")
            if value is not None:
                out.append(f"={g.escape(value, g.PARAM_SAFE)}")
        if self.headers:
            out.append("?")
            out.append(
                "&".join(
                    f"{g.escape(k, g.HEADER_SAFE)}={g.escape(v, g.HEADER_SAFE)}"
                    for k, v in self.headers.items()
                )
            )
        return "".join(out)

    # -- convenience -------------------------------------------------------------
    @property
    def is_sip(self) -> bool:
        """True for ``sip:`` and ``sips:`` URIs."""
        return self.scheme in SIP_SCHEMES

    @property
    def transport(self) -> str | None:
        """The ``transport`` URI parameter, lower-cased (RFC 3261 §19.1.1)."""
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def lr(self) -> bool:
        """True when the loose-routing ``lr`` parameter is present (RFC 3261 §19.1.1)."""
        return "lr" in self.params

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` URI parameter (RFC 3261 §19.1.1)."""
        return self.params.get("maddr")

    @property
    def host_port(self) -> str:
        """``host[:port]`` as on the wire."""
        host = format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    def with_params(self, **params: str | None) -> SipUri:
        """A copy with the given parameters set (None = flag parameter)."""
        merged = dict(self.params)
        merged.update(params)
        return replace(self, params=merged)

    def equivalent(self, other: SipUri) -> bool:
        """URI comparison of RFC 3261 §19.1.4 (not transitive; not ``==``).

        User info is case-sensitive, the rest is not; user, ttl, method, maddr and
        transport must match when either URI has them; other parameters only when both
        have them; embedded headers must be the same set.
        """
        if self.scheme != other.scheme:
            return False
        if self.opaque is not None or other.opaque is not None:
            return self.opaque == other.opaque
        if (self.user, self.password) != (other.user, other.password):
            return False
        if self.host.lower() != other.host.lower() or self.port != other.port:
            return False
        mine = {k: (v.lower() if v is not None else None) for k, v in self.params.items()}
        theirs = {k: (v.lower() if v is not None else None) for k, v in other.params.items()}
        for name in mine.keys() | theirs.keys():
            compared = name in _STRICT_URI_PARAMS or (name in mine and name in theirs)
            if compared and mine.get(name, "\x00") != theirs.get(name, "\x00"):
                return False
        own_headers = {k.lower(): v for k, v in self.headers.items()}
        other_headers = {k.lower(): v for k, v in other.headers.items()}
        return own_headers == other_headers

    def without_headers(self) -> SipUri:
        """A copy without embedded headers (RFC 3261 §19.1.5: not used in a Request-URI)."""
        return replace(self, headers={})


def _parse_uri_params(parts: list[str]) -> dict[str, str | None]:
    """``uri-parameters = *( ";" uri-parameter )`` (RFC 3261 §25.1)."""
    params: dict[str, str | None] = {}
    for part in parts:
        name, eq, value = part.partition("=")
        if not g.PARAMCHARS_RE.fullmatch(name):
            raise SipParseError("bad URI parameter name")
        if eq:
            if not g.PARAMCHARS_RE.fullmatch(value):
                raise SipParseError(f"bad value for URI parameter {name}")
            params[g.unescape(name, "URI parameter").lower()] = g.unescape(value, "URI parameter")
        else:
            params[g.unescape(name, "URI parameter").lower()] = None
    return params


def parse_request_uri(text: str, max_length: int) -> SipUri:
    """The Request-URI of a request line (RFC 3261 §25.1): SIP-URI / SIPS-URI /
    absoluteURI.  Any scheme parses (RFC 4475 §3.3.2, §3.3.3); whether it is supported
    is the UA's decision, see `check_request_uri_scheme`.  Over ``max_length`` is 414.
    """
    if len(text) > max_length:
        raise SipParseError("Request-URI too long", StatusCode.REQUEST_URI_TOO_LONG)
    try:
        return SipUri.parse(text)
    except SipParseError as exc:
        raise SipParseError(f"bad Request-URI ({exc.reason})") from None


def check_request_uri_scheme(uri: SipUri, schemes: frozenset[str] = SIP_SCHEMES) -> None:
    """Raise 416 Unsupported URI Scheme for a Request-URI we do not serve
    (RFC 3261 §8.2.2.1, RFC 4475 §3.3.2)."""
    if uri.scheme not in schemes:
        raise SipError(StatusCode.UNSUPPORTED_URI_SCHEME, f"unsupported URI scheme {uri.scheme}")


#   name-addr = [ display-name ] LAQUOT addr-spec RAQUOT ; display-name = *(token LWS) /
#   quoted-string (RFC 3261 §25.1; no LWS before "<" is tolerated, RFC 4475 §3.1.1.6)
_NAME_ADDR_RE = re.compile(
    rf"(?:({g.QUOTED_STRING})[ \t]*|((?:{g.TOKEN}(?:[ \t]+{g.TOKEN})*[ \t]*)?))"
    rf"<([^<>\s\"]+)>[ \t]*(;.*)?",
    re.S,
)


@dataclass(frozen=True)
class NameAddr:
    """``( name-addr / addr-spec ) *( SEMI generic-param )`` as in From, To, Contact,
    Route, Record-Route, Refer-To and Referred-By (RFC 3261 §20.10, §20.20, §25.1).

    ``display_name`` is unquoted; ``params`` are the header parameters (``tag``,
    ``expires``, ``q``, ``+sip.instance`` ...), names lower-cased, values as on the wire.
    A wildcard Contact (``*``, RFC 3261 §10.2.2) has ``wildcard`` set.
    """

    uri: SipUri
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    wildcard: bool = False

    def __hash__(self) -> int:
        return hash(str(self))

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Parse one value (already split on top-level commas)."""
        text = text.strip(" \t")
        if text == "*":
            return cls(uri=SipUri("*", opaque=""), wildcard=True)
        fast = _NAME_ADDR_RE.fullmatch(text)
        if fast is not None:
            quoted, tokens, inner, tail = fast.groups()
            if quoted is not None:
                display: str | None = g.unquote(quoted)
            else:
                display = " ".join(tokens.split()) if tokens else None
            uri = SipUri.parse(inner)
            params = g.parse_param_string(tail, "name-addr") if tail else {}
            return cls(uri=uri, display_name=display, params=params)
        display = None
        if text.startswith('"'):
            match = g.QUOTED_STRING_RE.match(text)
            if not match:
                raise SipParseError("unterminated quoted string in display name")
            display = g.unquote(match.group(0))
            text = text[match.end() :].lstrip(" \t")
            if not text.startswith("<"):
                raise SipParseError("display name not followed by <URI>")
        if text.startswith("<") or "<" in text.split(";", 1)[0]:
            lt = text.index("<")
            if display is None:
                tokens = text[:lt].split()
                if not all(g.TOKEN_RE.fullmatch(tok) for tok in tokens):
                    raise SipParseError("display name is not a token list or quoted string")
                display = " ".join(tokens) if tokens else None
            gt = text.find(">", lt)
            if gt < 0:
                raise SipParseError("unterminated <URI>")
            inner = text[lt + 1 : gt]
            if any(ch in inner for ch in " \t"):
                raise SipParseError("spaces within addr-spec")  # RFC 4475 §3.1.2.14
            uri = SipUri.parse(inner)
            tail = text[gt + 1 :].strip(" \t")
        else:
            spec, _, rest = text.partition(";")
            spec = spec.rstrip(" \t")
            if any(ch in spec for ch in "?,") or " " in spec or "\t" in spec:
                raise SipParseError("URI with ? , or spaces must be enclosed in <>")
            uri = SipUri.parse(spec)
            tail = ";" + rest if _ else ""
        params = {}
        if tail:
            if not tail.startswith(";"):
                raise SipParseError("junk after URI")
            params = g.parse_params(g.split_top_level(tail[1:], ";"), "name-addr")
        return cls(uri=uri, display_name=display, params=params)

    def __str__(self) -> str:
        if self.wildcard:
            return "*"
        uri = f"<{self.uri}>"
        if self.display_name is not None:
            uri = f"{g.quote(self.display_name)} {uri}"
        return uri + g.format_params(self.params)

    # -- parameters --------------------------------------------------------------
    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter of From/To (RFC 3261 §19.3)."""
        return self.params.get("tag")

    @property
    def expires(self) -> int | None:
        """The Contact ``expires`` parameter in seconds (RFC 3261 §20.10)."""
        value = self.params.get("expires")
        if value is None or not value.isdigit():
            return None
        return min(int(value), 2**32 - 1)

    @property
    def q(self) -> float | None:
        """The Contact ``q`` preference 0..1 (RFC 3261 §20.10)."""
        value = self.params.get("q")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    @property
    def instance(self) -> str | None:
        """The ``+sip.instance`` value, unquoted, e.g. ``<urn:uuid:...>`` (RFC 5626 §4.1)."""
        value = self.params.get("+sip.instance")
        if value is not None and value.startswith('"') and value.endswith('"'):
            return g.unquote(value)
        return value

    def with_params(self, **params: str | None) -> NameAddr:
        """A copy with the given header parameters set."""
        merged = dict(self.params)
        merged.update(params)
        return replace(self, params=merged)

    def with_tag(self, tag: str) -> NameAddr:
        """A copy with ``;tag=`` set (RFC 3261 §8.2.6.2, §12.1.1)."""
        return self.with_params(tag=tag)
