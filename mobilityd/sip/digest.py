"""SIP digest authentication (RFC 7616, as used by RFC 3261 §22.4), sans-I/O.

Client side: :class:`DigestClient` answers a ``WWW-Authenticate`` /
``Proxy-Authenticate`` challenge (401/407, RFC 3261 §22.2/§22.3) with an
``Authorization`` / ``Proxy-Authorization`` value, keeping the nonce count
(``nc``, RFC 7616 §3.4) per nonce; the ``cnonce`` comes from the injected ``rng``.

Server side: :class:`DigestVerifier` issues challenges with stateless nonces
(timestamp + HMAC, RFC 7616 §3.3 "nonce" advice) and verifies answers, rejecting
replayed nonce counts and stale nonces.

Algorithms: MD5, MD5-sess, SHA-256, SHA-256-sess (RFC 7616 §3.4.2, §6.1);
``qop=auth`` and ``auth-int`` (§3.4.3) plus the RFC 2069 form without qop that
RFC 3261 §22.4 still allows on input.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

Rng = Callable[[int], bytes]

#: RFC 7616 §3.4: the "nc" value is 8 hex digits.
_NC_RE = re.compile(r"[0-9a-fA-F]{8}\Z")
#: RFC 7235 §2.1 auth-param: token BWS "=" BWS ( token / quoted-string ).
_PARAM_RE = re.compile(
    r'\s*([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*'
    r'(?:"((?:[^"\\]|\\.)*)"|([!#$%&\'*+\-.^_`|~0-9A-Za-z/:@]+))\s*(?:,|\Z)',
    re.DOTALL,
)
_MAX_HEADER_VALUE = 4096


class DigestAlgorithm(Enum):
    """The ``algorithm`` token (RFC 7616 §3.3, registry in §6.1)."""

    MD5 = "MD5"
    MD5_SESS = "MD5-sess"
    SHA_256 = "SHA-256"
    SHA_256_SESS = "SHA-256-sess"

    @property
    def is_session(self) -> bool:
        """True for the ``-sess`` variants (RFC 7616 §3.4.2)."""
        return self.value.endswith("-sess")

    def hash_bytes_hex(self, data: bytes) -> str:
        """H(data) as lower-case hex (RFC 7616 §3.2)."""
        name = "md5" if self in (DigestAlgorithm.MD5, DigestAlgorithm.MD5_SESS) else "sha256"
        return hashlib.new(name, data).hexdigest()

    def hash_hex(self, data: str) -> str:
        """H(data) of a UTF-8 string (RFC 7616 §3.4.5)."""
        return self.hash_bytes_hex(data.encode("utf-8"))

    @classmethod
    def parse(cls, token: str) -> DigestAlgorithm:
        """Case-insensitive match of the algorithm token."""
        for algorithm in cls:
            if algorithm.value.lower() == token.lower():
                return algorithm
        raise DigestParseError(f"unsupported digest algorithm {token!r}")


class Qop(Enum):
    """Quality of protection (RFC 7616 §3.3, §3.4)."""

    AUTH = "auth"
    AUTH_INT = "auth-int"


class DigestError(Exception):
    """A digest failure, carrying the SIP answer (``status``, ``reason``)."""

    status = 400
    reason = "Bad Request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class DigestParseError(DigestError):
    """A challenge or credentials value that does not follow RFC 7616 §3.3/§3.4."""

    status = 400
    reason = "Bad Request"


class DigestRejected(DigestError):
    """Credentials that parse but do not authenticate (answer with a new challenge)."""

    status = 401
    reason = "Unauthorized"

    def __init__(self, detail: str, *, stale: bool = False) -> None:
        super().__init__(detail)
        self.stale = stale


def _quote(value: str) -> str:
    """RFC 7230 §3.2.6 quoted-string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_auth_params(value: str) -> dict[str, str]:
    """Split ``Digest k=v, k="v"`` into lower-cased names and unquoted values.

    RFC 7235 §2.1 (auth-scheme and auth-param) with RFC 3261 §25.1 quoted-string.
    Raises :class:`DigestParseError` for another scheme, a duplicate or a syntax error.
    """
    if len(value) > _MAX_HEADER_VALUE:
        raise DigestParseError("digest header value too long")
    scheme, *tail = re.split(r"\s+", value.strip(), maxsplit=1)
    rest = tail[0] if tail else ""
    if scheme.lower() != "digest":
        raise DigestParseError(f"not a Digest header: scheme {scheme!r}")
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _PARAM_RE.match(rest, position)
        if match is None:
            raise DigestParseError(f"malformed digest parameter at {rest[position:][:20]!r}")
        name = match.group(1).lower()
        if name in params:
            raise DigestParseError(f"duplicate digest parameter {name!r}")
        quoted = match.group(2)
        params[name] = (re.sub(r"\\(.)", r"\1", quoted, flags=re.DOTALL)
                        if quoted is not None else match.group(3))
        position = match.end()
    return params


def _require(params: Mapping[str, str], name: str) -> str:
    try:
        return params[name]
    except KeyError:
        raise DigestParseError(f"digest parameter {name!r} missing") from None


@dataclass(frozen=True)
class DigestChallenge:
    """A ``WWW-Authenticate`` / ``Proxy-Authenticate`` Digest value (RFC 7616 §3.3)."""

    realm: str
    nonce: str
    algorithm: DigestAlgorithm = DigestAlgorithm.MD5
    qop: tuple[Qop, ...] = (Qop.AUTH,)
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> DigestChallenge:
        """Parse a challenge; unknown qop options are ignored (RFC 7616 §3.3)."""
        params = parse_auth_params(value)
        qop_options: list[Qop] = []
        for option in params.get("qop", "").split(","):
            token = option.strip().lower()
            for qop in Qop:
                if qop.value == token:
                    qop_options.append(qop)
        if "qop" in params and not qop_options:
            raise DigestParseError(f"no supported qop in {params['qop']!r}")
        return cls(
            realm=_require(params, "realm"),
            nonce=_require(params, "nonce"),
            algorithm=DigestAlgorithm.parse(params.get("algorithm", "MD5")),
            qop=tuple(qop_options),
            opaque=params.get("opaque"),
            stale=params.get("stale", "false").lower() == "true",
        )

    def __str__(self) -> str:
        parts = [f"realm={_quote(self.realm)}", f"nonce={_quote(self.nonce)}"]
        if self.qop:
            parts.append("qop=" + _quote(", ".join(q.value for q in self.qop)))
        parts.append(f"algorithm={self.algorithm.value}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        return "Digest " + ", ".join(parts)


@dataclass(frozen=True)
class DigestCredentials:
    """An ``Authorization`` / ``Proxy-Authorization`` Digest value (RFC 7616 §3.4)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: DigestAlgorithm = DigestAlgorithm.MD5
    qop: Qop | None = None
    nc: int | None = None
    cnonce: str | None = None
    opaque: str | None = None

    @classmethod
    def parse(cls, value: str) -> DigestCredentials:
        """Parse credentials; with ``qop`` both ``nc`` and ``cnonce`` are required."""
        params = parse_auth_params(value)
        qop: Qop | None = None
        nc: int | None = None
        cnonce: str | None = None
        if "qop" in params:
            try:
                qop = Qop(params["qop"].lower())
            except ValueError:
                raise DigestParseError(f"unsupported qop {params['qop']!r}") from None
            nc_text = _require(params, "nc")
            if not _NC_RE.match(nc_text):
                raise DigestParseError(f"nc must be 8 hex digits, got {nc_text!r}")
            nc = int(nc_text, 16)
            cnonce = _require(params, "cnonce")
        response = _require(params, "response")
        if not re.fullmatch(r"[0-9a-fA-F]+", response):
            raise DigestParseError("response is not hex")
        return cls(
            username=_require(params, "username"),
            realm=_require(params, "realm"),
            nonce=_require(params, "nonce"),
            uri=_require(params, "uri"),
            response=response.lower(),
            algorithm=DigestAlgorithm.parse(params.get("algorithm", "MD5")),
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            opaque=params.get("opaque"),
        )

    def __str__(self) -> str:
        # RFC 7616 §3.4: algorithm, qop and nc are never quoted; the rest always.
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"uri={_quote(self.uri)}",
            f"response={_quote(self.response)}",
            f"algorithm={self.algorithm.value}",
        ]
        if self.qop is not None and self.nc is not None and self.cnonce is not None:
            parts += [f"qop={self.qop.value}", f"nc={self.nc:08x}",
                      f"cnonce={_quote(self.cnonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        return "Digest " + ", ".join(parts)


def compute_response(
    *,
    algorithm: DigestAlgorithm,
    username: str,
    realm: str,
    password: str,
    nonce: str,
    method: str,
    uri: str,
    qop: Qop | None,
    nc: int | None,
    cnonce: str | None,
    body: bytes = b"",
) -> str:
    """The ``response`` value: KD(H(A1), nonce:nc:cnonce:qop:H(A2)) (RFC 7616 §3.4.1-3)."""
    h = algorithm.hash_hex
    ha1 = h(f"{username}:{realm}:{password}")
    if algorithm.is_session:
        if cnonce is None:
            raise DigestParseError("-sess algorithm needs a cnonce")
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    a2 = f"{method}:{uri}"
    if qop is Qop.AUTH_INT:
        a2 += f":{algorithm.hash_bytes_hex(body)}"
    ha2 = h(a2)
    if qop is None:
        # RFC 2069 compatibility form (RFC 3261 §22.4).
        return h(f"{ha1}:{nonce}:{ha2}")
    if nc is None or cnonce is None:
        raise DigestParseError("qop needs nc and cnonce")
    return h(f"{ha1}:{nonce}:{nc:08x}:{cnonce}:{qop.value}:{ha2}")


@dataclass
class DigestClient:
    """Answers challenges for one user (RFC 7616 §3.4; RFC 3261 §22.2).

    Keeps the nonce count per (realm, nonce) so that a reused nonce gets nc 2, 3...
    """

    username: str
    password: str
    rng: Rng
    _nonce_counts: OrderedDict[tuple[str, str], int] = field(default_factory=OrderedDict)

    def authorize(
        self, challenge: DigestChallenge, method: str, uri: str, body: bytes = b""
    ) -> DigestCredentials:
        """Build credentials for ``method uri`` answering ``challenge``."""
        qop: Qop | None = None
        if Qop.AUTH in challenge.qop:
            qop = Qop.AUTH
        elif Qop.AUTH_INT in challenge.qop:
            qop = Qop.AUTH_INT
        key = (challenge.realm, challenge.nonce)
        nc = self._nonce_counts.pop(key, 0) + 1
        self._nonce_counts[key] = nc
        while len(self._nonce_counts) > 32:
            self._nonce_counts.popitem(last=False)
        cnonce = base64.b64encode(self.rng(16)).decode("ascii") if qop is not None else None
        if qop is None and challenge.algorithm.is_session:
            cnonce = base64.b64encode(self.rng(16)).decode("ascii")
        response = compute_response(
            algorithm=challenge.algorithm, username=self.username, realm=challenge.realm,
            password=self.password, nonce=challenge.nonce, method=method, uri=uri,
            qop=qop, nc=nc if qop is not None else None, cnonce=cnonce, body=body,
        )
        return DigestCredentials(
            username=self.username, realm=challenge.realm, nonce=challenge.nonce, uri=uri,
            response=response, algorithm=challenge.algorithm, qop=qop,
            nc=nc if qop is not None else None, cnonce=cnonce, opaque=challenge.opaque,
        )


@dataclass
class DigestVerifier:
    """Server side for tests and the daemon's control plane (RFC 7616 §3.3, §3.6).

    Nonces are stateless: base64(timestamp ":" HMAC(secret, timestamp)); the highest
    nonce count seen per nonce is kept (bounded) to reject replays (§3.4 "nc").
    """

    realm: str
    passwords: Mapping[str, str]
    rng: Rng
    nonce_lifetime: float = 300.0
    algorithm: DigestAlgorithm = DigestAlgorithm.MD5
    max_tracked_nonces: int = 4096
    _secret: bytes = b""
    _seen_nc: OrderedDict[str, int] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        if not self._secret:
            self._secret = self.rng(32)

    def _nonce_mac(self, stamp: str) -> str:
        return hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:32]

    def challenge(self, now: float, *, stale: bool = False) -> DigestChallenge:
        """A fresh challenge for a 401/407 (RFC 7616 §3.3)."""
        stamp = f"{now:.6f}-{self.rng(6).hex()}"
        nonce = base64.b64encode(f"{stamp}:{self._nonce_mac(stamp)}".encode()).decode()
        opaque = base64.b64encode(self.rng(12)).decode()
        return DigestChallenge(realm=self.realm, nonce=nonce, algorithm=self.algorithm,
                               qop=(Qop.AUTH,), opaque=opaque, stale=stale)

    def _check_nonce(self, nonce: str, now: float) -> None:
        try:
            stamp, _, mac = base64.b64decode(nonce, validate=True).decode().rpartition(":")
            issued = float(stamp.split("-")[0])
        except (ValueError, UnicodeDecodeError):
            raise DigestRejected("nonce not issued here") from None
        if not hmac.compare_digest(mac, self._nonce_mac(stamp)):
            raise DigestRejected("nonce not issued here")
        if not 0 <= now - issued <= self.nonce_lifetime:
            raise DigestRejected("nonce expired", stale=True)

    def verify(
        self, credentials: DigestCredentials, method: str, now: float, body: bytes = b""
    ) -> str:
        """Return the authenticated username or raise :class:`DigestRejected`."""
        if credentials.realm != self.realm:
            raise DigestRejected(f"wrong realm {credentials.realm!r}")
        password = self.passwords.get(credentials.username)
        if password is None:
            raise DigestRejected("unknown user")
        self._check_nonce(credentials.nonce, now)
        expected = compute_response(
            algorithm=credentials.algorithm, username=credentials.username,
            realm=credentials.realm, password=password, nonce=credentials.nonce,
            method=method, uri=credentials.uri, qop=credentials.qop, nc=credentials.nc,
            cnonce=credentials.cnonce, body=body,
        )
        if not hmac.compare_digest(expected, credentials.response):
            raise DigestRejected("wrong response")
        if credentials.nc is not None:
            last = self._seen_nc.pop(credentials.nonce, 0)
            self._seen_nc[credentials.nonce] = max(last, credentials.nc)
            while len(self._seen_nc) > self.max_tracked_nonces:
                self._seen_nc.popitem(last=False)
            if credentials.nc <= last:
                raise DigestRejected(f"nonce count {credentials.nc} replayed")
        return credentials.username
