"""Sans-I/O REGISTER client (RFC 3261 §10.2) with digest and GRUU.

- Digest (RFC 3261 §22.2, RFC 7616): a 401/407 is answered once with credentials; a
  second challenge fails the registration unless it says ``stale=true``. Refreshes
  reuse the last challenge with an incremented nonce count. With
  ``RegistrationConfig.realm`` a challenge for another realm is not answered (the
  credentials belong to that realm, RFC 7616 §3.3; RFC 3261 §22.1 protection spaces).
  The last failure stays readable as :attr:`RegistrationClient.last_failure`.
- GRUU (RFC 5627 §4.1, §5): the Contact carries ``+sip.instance`` and the request
  ``Supported: gruu``; ``pub-gruu`` / ``temp-gruu`` of our binding are read from the 200.
- Refresh (RFC 3261 §10.2.4): before the granted expiry, with the same Call-ID and an
  increasing CSeq; 423 is retried with Min-Expires (§10.2.8).
- Move: :meth:`RegistrationClient.move` re-registers the new Contact (after the
  transport moved to a new address) and removes the old binding (``expires=0``, §10.2.2).

The client builds whole requests (Via with a fresh branch from the injected ``rng``);
the caller sends them through the transaction layer and feeds back final responses.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from mobilityd.sip.digest import DigestAlgorithm, DigestChallenge, DigestClient, DigestError, Rng
from mobilityd.sip.errors import SipParseError
from mobilityd.sip.grammar import unquote
from mobilityd.sip.headers import Headers
from mobilityd.sip.message import Request, Response
from mobilityd.sip.uri import NameAddr, SipUri

#: RFC 3261 §10.2.4 leaves the refresh point open; we refresh at this fraction of the
#: granted interval, and never later than REFRESH_MARGIN seconds before expiry.
REFRESH_FRACTION = 0.8
REFRESH_MARGIN = 5.0
#: Back-off before trying again after a failure (RFC 5626 §4.5 base time for all-failed).
RETRY_AFTER_FAILURE = 30.0
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, SUBSCRIBE, UPDATE"


class RegistrationState(Enum):
    """Where the binding stands."""

    UNREGISTERED = "unregistered"
    REGISTERING = "registering"
    REGISTERED = "registered"
    UNREGISTERING = "unregistering"
    FAILED = "failed"


@dataclass(frozen=True)
class Registered:
    """The registrar accepted our binding (RFC 3261 §10.3 step 8; RFC 5627 §5)."""

    contact: SipUri
    expires: int
    pub_gruu: SipUri | None
    temp_gruu: SipUri | None


@dataclass(frozen=True)
class RegistrationFailed:
    """The registrar refused us (the final status), or auth failed twice."""

    status: int
    reason: str


@dataclass(frozen=True)
class Unregistered:
    """Our binding was removed (a REGISTER with expires=0 succeeded)."""


RegistrationEvent = Registered | RegistrationFailed | Unregistered


@dataclass(frozen=True)
class RegistrationConfig:
    """What to register: ``aor`` at ``registrar`` as device ``instance_id``."""

    aor: SipUri
    registrar: SipUri
    instance_id: str  # "urn:uuid:..." (RFC 5627 §4.1, RFC 4122)
    username: str
    password: str
    expires: int = 600
    user_agent: str = "mobilityd"
    #: The realm the credentials belong to (RFC 7616 §3.3); None answers any realm.
    realm: str | None = None


@dataclass(frozen=True)
class LocalBinding:
    """Our advertised address: Via sent-by and transport, and the Contact URI."""

    transport: str  # Via token: UDP, TCP, TLS
    host: str
    port: int
    contact: SipUri


class RegistrationError(Exception):
    """API misuse (a local error): e.g. a response that does not belong to us."""


class RegistrationClient:
    """One AOR's registration, driven by requests out and responses in."""

    def __init__(self, config: RegistrationConfig, binding: LocalBinding, rng: Rng) -> None:
        self.config = config
        self.binding = binding
        self._rng = rng
        self._digest = DigestClient(config.username, config.password, rng)
        self.call_id = rng(12).hex() + "@mobilityd"
        self._from_tag = rng(6).hex()
        self._cseq = 0
        self._expires = config.expires
        self._pending_expires = config.expires
        self._pending: Request | None = None
        self._challenge: tuple[str, DigestChallenge] | None = None  # (header, challenge)
        self._auth_retried = False
        self._old_contacts: list[SipUri] = []
        self._deadline: float | None = None
        self._events: deque[RegistrationEvent] = deque()
        self.state = RegistrationState.UNREGISTERED
        self.pub_gruu: SipUri | None = None
        self.temp_gruu: SipUri | None = None
        #: Why the registration last failed; None once it is registered again.
        self.last_failure: RegistrationFailed | None = None

    # -- driving ------------------------------------------------------------------

    def register(self, now: float) -> Request:
        """Send (or refresh) the binding."""
        self.state = RegistrationState.REGISTERING
        self._auth_retried = False
        return self._build(self._expires)

    def move(self, binding: LocalBinding, now: float) -> Request:
        """Re-register from a new local address; the old Contact is removed (§10.2.2)."""
        if binding.contact != self.binding.contact:
            self._old_contacts.append(self.binding.contact)
        self.binding = binding
        return self.register(now)

    def unregister(self, now: float) -> Request:
        """Remove our binding (expires=0, RFC 3261 §10.2.2)."""
        self.state = RegistrationState.UNREGISTERING
        self._auth_retried = False
        self._deadline = None
        return self._build(0)

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` wants to run (the refresh point)."""
        return self._deadline

    def handle_timer(self, now: float) -> Request | None:
        """Refresh when the deadline passed (RFC 3261 §10.2.4)."""
        if self._deadline is None or now < self._deadline:
            return None
        self._deadline = None
        return self.register(now)

    def next_event(self) -> RegistrationEvent | None:
        """The next event, or None."""
        return self._events.popleft() if self._events else None

    def owns(self, response: Response) -> bool:
        """Whether ``response`` answers our pending REGISTER."""
        try:
            cseq = response.cseq
        except SipParseError:
            return False
        return (self._pending is not None and response.call_id == self.call_id
                and cseq.method == "REGISTER" and cseq.seq == self._cseq)

    def receive_response(self, response: Response, now: float) -> Request | None:
        """Feed a final response; returns a follow-up REGISTER when one is needed."""
        if not self.owns(response):
            raise RegistrationError("response does not answer our pending REGISTER")
        if response.status < 200:
            return None
        pending = self._pending
        assert pending is not None
        self._pending = None
        if response.status in (401, 407):
            return self._answer_challenge(response, now)
        if response.status == 423:
            return self._retry_interval(response, now)
        if 200 <= response.status < 300:
            self._accepted(response, now)
            return None
        self._fail(response.status, response.reason, now)
        return None

    def transaction_failed(self, status: int, reason: str, now: float) -> None:
        """The transaction timed out (408) or the transport failed (503), §8.1.3.1."""
        self._pending = None
        self._fail(status, reason, now)

    # -- internals ----------------------------------------------------------------

    def _build(self, expires: int) -> Request:
        self._cseq += 1
        config, binding = self.config, self.binding
        headers = Headers()
        branch = "z9hG4bK" + self._rng(10).hex()
        host = f"[{binding.host}]" if ":" in binding.host and not binding.host.startswith(
            "[") else binding.host  # IPv6reference, RFC 3261 §25.1
        headers.add("Via", f"SIP/2.0/{binding.transport} {host}:{binding.port}"
                           f";branch={branch};rport")
        headers.add("Max-Forwards", "70")
        headers.add("From", f"<{config.aor}>;tag={self._from_tag}")
        headers.add("To", f"<{config.aor}>")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self._cseq} REGISTER")
        for old in self._old_contacts:
            headers.add("Contact", f"<{old}>;expires=0")
        instance = f'+sip.instance="<{config.instance_id}>"'
        headers.add("Contact", f"<{binding.contact}>;{instance};expires={expires}")
        headers.add("Supported", "gruu, path")
        headers.add("Allow", ALLOW)
        headers.add("User-Agent", config.user_agent)
        if self._challenge is not None:
            name, challenge = self._challenge
            credentials = self._digest.authorize(challenge, "REGISTER", str(config.registrar))
            headers.add("Authorization" if name == "WWW-Authenticate"
                        else "Proxy-Authorization", str(credentials))
        request = Request("REGISTER", config.registrar, headers)
        self._pending = request
        self._pending_expires = expires
        return request

    def _answer_challenge(self, response: Response, now: float) -> Request | None:
        name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        challenge = self._pick_challenge(response.headers.get_all(name))
        if challenge is None:
            self._fail(response.status, "no usable digest challenge", now)
            return None
        if self.config.realm is not None and challenge.realm != self.config.realm:
            self._challenge = None
            self._fail(response.status, f"challenge for realm {challenge.realm!r}, not the "
                       f"configured realm {self.config.realm!r}", now)
            return None
        if self._auth_retried and not challenge.stale:
            self._challenge = None
            self._fail(response.status, "credentials rejected", now)
            return None
        self._auth_retried = True
        self._challenge = (name, challenge)
        return self._build(self._pending_expires)

    @staticmethod
    def _pick_challenge(values: list[str]) -> DigestChallenge | None:
        """Prefer SHA-256 over MD5 (RFC 7616 §3.7) among the challenges we can parse."""
        parsed: list[DigestChallenge] = []
        for value in values:
            try:
                parsed.append(DigestChallenge.parse(value))
            except DigestError:
                continue
        sha256 = (DigestAlgorithm.SHA_256, DigestAlgorithm.SHA_256_SESS)
        parsed.sort(key=lambda c: 0 if c.algorithm in sha256 else 1)
        return parsed[0] if parsed else None

    def _retry_interval(self, response: Response, now: float) -> Request | None:
        text = response.headers.get("Min-Expires")
        if text is None or not text.strip().isdigit() or int(text) <= self._pending_expires:
            self._fail(423, "Interval Too Brief without a usable Min-Expires", now)
            return None
        self._expires = int(text)
        return self._build(self._expires)

    def _accepted(self, response: Response, now: float) -> None:
        self._old_contacts.clear()
        self.last_failure = None
        if self._pending_expires == 0:
            self.state = RegistrationState.UNREGISTERED
            self._deadline = None
            self.pub_gruu = self.temp_gruu = None
            self._events.append(Unregistered())
            return
        ours = self._our_contact(response)
        expires = self._granted_expires(response, ours)
        if ours is not None:
            self.pub_gruu = _gruu(ours, "pub-gruu") or self.pub_gruu
            self.temp_gruu = _gruu(ours, "temp-gruu") or self.temp_gruu
        self.state = RegistrationState.REGISTERED
        refresh_in = min(expires * REFRESH_FRACTION, max(expires - REFRESH_MARGIN, 1.0))
        self._deadline = now + refresh_in
        self._events.append(Registered(self.binding.contact, expires, self.pub_gruu,
                                       self.temp_gruu))

    def _our_contact(self, response: Response) -> NameAddr | None:
        """Our binding among the 200's Contacts: same URI, else same instance (§10.2.4)."""
        try:
            contacts = response.contacts
        except SipParseError:
            return None
        wanted = f"<{self.config.instance_id}>"
        for contact in contacts:
            if _same_uri(contact.uri, self.binding.contact):
                return contact
        for contact in contacts:
            if contact.instance == wanted and (contact.expires or 0) > 0:
                return contact
        return None

    def _granted_expires(self, response: Response, ours: NameAddr | None) -> int:
        if ours is not None and ours.expires is not None:
            return ours.expires
        try:
            header = response.expires
        except SipParseError:
            header = None
        return header if header is not None else self._pending_expires

    def _fail(self, status: int, reason: str, now: float) -> None:
        self.state = RegistrationState.FAILED
        self._deadline = now + RETRY_AFTER_FAILURE
        self.last_failure = RegistrationFailed(status, reason)
        self._events.append(self.last_failure)


def _same_uri(a: SipUri, b: SipUri) -> bool:
    """Loose RFC 3261 §19.1.4 comparison: scheme, user, host, port, transport."""
    return (a.scheme, a.user, a.host.lower(), a.port, a.transport) == (
        b.scheme, b.user, b.host.lower(), b.port, b.transport)


def _gruu(contact: NameAddr, name: str) -> SipUri | None:
    """A ``pub-gruu`` / ``temp-gruu`` Contact parameter as a URI (RFC 5627 §5.2)."""
    value = contact.params.get(name)
    if not value:
        return None
    if value.startswith('"'):
        value = unquote(value)
    try:
        return SipUri.parse(value)
    except SipParseError:
        return None


__all__ = [
    "LocalBinding",
    "Registered",
    "RegistrationClient",
    "RegistrationConfig",
    "RegistrationError",
    "RegistrationEvent",
    "RegistrationFailed",
    "RegistrationState",
    "Unregistered",
]
