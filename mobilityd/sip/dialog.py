"""RFC 3261 §12 dialogs: identity, route set, CSeq spaces, remote/local targets.

A ``Dialog`` holds only state and pure rules; the UA core decides when to apply them.
Target refresh (§12.2.2, §12.2.1.2) is split in two on purpose: ``target_refresh_of``
only *reads* a re-INVITE/UPDATE, and ``set_remote_target`` applies it — so that the
application can refuse a move (e.g. MIKEY did not verify) and leave the dialog exactly
as it was.  ``set_local_contact`` covers our own move after a transport rebind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from mobilityd.sip.errors import SipError, StatusCode
from mobilityd.sip.uri import NameAddr, SipUri

#: Methods whose requests (and 2xx responses) refresh the remote target (§12.2,
#: RFC 3311 §5.1 for UPDATE, RFC 6665 §4.1.2.1-style for SUBSCRIBE/NOTIFY, RFC 3515).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


class DialogState(Enum):
    EARLY = "early"  # created by a 1xx with a To tag (§12.1)
    CONFIRMED = "confirmed"  # created/confirmed by a 2xx
    TERMINATED = "terminated"


DialogId = tuple[str, str, str]  # (Call-ID, local tag, remote tag) - §12


@dataclass(slots=True)
class Dialog:
    """The dialog state of RFC 3261 §12 (IDs, sequence numbers, URIs, route set)."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # From/To field value of our side, without tag
    remote_uri: str  # the peer's, without tag
    # The peer's Contact: kept as the (syntax-checked) field value until first needed -
    # a UAS that is only ever sent requests never parses it.  See ``remote_target``.
    target: SipUri | str
    local_target: SipUri
    local_seq: int | None
    remote_seq: int | None
    route_set: list[NameAddr] = field(default_factory=list)
    secure: bool = False
    is_uac: bool = True
    state: DialogState = DialogState.CONFIRMED

    def __init__(  # noqa: PLR0917 - the fields, positional as @dataclass makes them
            self, call_id: str, local_tag: str, remote_tag: str, local_uri: str,
            remote_uri: str, target: SipUri | str, local_target: SipUri,
            local_seq: int | None, remote_seq: int | None,
            route_set: list[NameAddr] | None = None, secure: bool = False,
            is_uac: bool = True, state: DialogState = DialogState.CONFIRMED) -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        self.local_uri = local_uri
        self.remote_uri = remote_uri
        self.target = target
        self.local_target = local_target
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.route_set = [] if route_set is None else route_set
        self.secure = secure
        self.is_uac = is_uac
        self.state = state

    @property
    def id(self) -> DialogId:
        return (self.call_id, self.local_tag, self.remote_tag)

    @property
    def remote_target(self) -> SipUri:
        """Where in-dialog requests go (§12.1.1, §12.1.2): the peer's Contact URI."""
        target = self.target
        if isinstance(target, str):
            target = self.target = NameAddr.parse(target).uri
        return target

    # --- creation (§12.1) ------------------------------------------------------------

    @classmethod
    def as_uac(cls, *, call_id: str, local_tag: str, local_uri: str,
               remote_uri: str, local_target: SipUri, local_seq: int,
               remote_tag: str, contact: SipUri | str | None, record_route: list[NameAddr],
               request_uri: SipUri, early: bool) -> Dialog:
        """§12.1.2: from a 2xx or a tagged 1xx to our INVITE.

        The route set is the Record-Route of the response in reverse order; the remote
        target is the response's Contact (kept as the Request-URI when it has none,
        which only a broken peer does).
        """
        return Dialog(
            call_id=call_id, local_tag=local_tag, remote_tag=remote_tag,
            local_uri=local_uri, remote_uri=remote_uri,
            target=contact if contact is not None else request_uri,
            local_target=local_target, local_seq=local_seq, remote_seq=None,
            route_set=list(reversed(record_route)),
            secure=request_uri.scheme == "sips", is_uac=True,
            state=DialogState.EARLY if early else DialogState.CONFIRMED,
        )

    @classmethod
    def as_uas(cls, *, call_id: str, local_tag: str, local_uri: str,
               remote_uri: str, local_target: SipUri, remote_tag: str | None,
               remote_seq: int, contact: SipUri | str, record_route: list[NameAddr],
               request_uri: SipUri) -> Dialog:
        """§12.1.1: from an INVITE we answer; route set = Record-Route in order."""
        if remote_tag is None:
            # RFC 2543 peers send no From tag; the dialog id then has a null remote tag.
            remote_tag = ""
        return Dialog(
            call_id=call_id, local_tag=local_tag, remote_tag=remote_tag,
            local_uri=local_uri, remote_uri=remote_uri,
            target=contact, local_target=local_target, local_seq=None,
            remote_seq=remote_seq, route_set=list(record_route),
            secure=request_uri.scheme == "sips", is_uac=False,
            state=DialogState.EARLY,
        )

    def confirm(self, *, contact: SipUri | None, record_route: list[NameAddr] | None
                ) -> None:
        """An early dialog became confirmed by a 2xx (§13.2.2.4: the route set and
        remote target are taken from the 2xx)."""
        if self.state is DialogState.EARLY:
            if record_route is not None:
                self.route_set = list(reversed(record_route)) if self.is_uac \
                    else list(record_route)
            if contact is not None:
                self.target = contact
        self.state = DialogState.CONFIRMED

    # --- CSeq (§12.2.1.1, §12.2.2) ---------------------------------------------------

    def next_local_seq(self, initial: int = 1) -> int:
        """The CSeq number of our next in-dialog request (increment by one)."""
        self.local_seq = initial if self.local_seq is None else self.local_seq + 1
        return self.local_seq

    def check_remote_seq(self, seq: int, method: str) -> None:
        """§12.2.2: a request with a lower CSeq than the last one is out of order: 500.

        ACK and CANCEL reuse the number of the request they belong to and are exempt.
        Accepted numbers become the new remote sequence number.
        """
        if method in ("ACK", "CANCEL"):
            return
        if self.remote_seq is not None and seq <= self.remote_seq:
            if seq < self.remote_seq:
                raise SipError(StatusCode.SERVER_INTERNAL_ERROR,
                               f"CSeq {seq} lower than {self.remote_seq} (RFC 3261 §12.2.2)")
            raise SipError(StatusCode.SERVER_INTERNAL_ERROR,
                           f"CSeq {seq} already used in this dialog (RFC 3261 §12.2.2)")
        self.remote_seq = seq

    # --- targets (§12.2.1.2, §12.2.2) ------------------------------------------------

    def target_refresh_of(self, method: str, contact: SipUri | None) -> SipUri | None:
        """The new remote target a target refresh would install, or ``None`` when the
        message would not change it.  Reads only: see ``set_remote_target``."""
        if method not in TARGET_REFRESH_METHODS or contact is None:
            return None
        return None if contact == self.remote_target else contact

    def set_remote_target(self, target: SipUri) -> SipUri:
        """Apply an accepted target refresh; returns the old target."""
        old = self.remote_target
        self.target = target
        return old

    def set_local_contact(self, target: SipUri) -> None:
        """Our address changed (transport rebind): the Contact of our next target
        refresh request carries it, which moves the peer's remote target (§12.2.1.1)."""
        if self.secure and target.scheme != "sips":
            raise ValueError("a secure dialog needs a sips: Contact (RFC 3261 §12.2.1.1)")
        self.local_target = target

    # --- routing (§12.2.1.1, §8.1.2) -------------------------------------------------

    def request_routing(self) -> tuple[SipUri, list[str]]:
        """Request-URI and Route values of an in-dialog request (§12.2.1.1).

        Loose routing: first route has ``lr`` -> R-URI is the remote target, Route is
        the route set.  Strict router: R-URI is the first route (without parameters not
        allowed in a Request-URI), Route is the rest plus the remote target last.
        """
        routes = self.route_set
        if not routes:
            return self.remote_target, []
        first = routes[0].uri
        if first.lr:
            return self.remote_target, [str(r) for r in routes]
        request_uri = _strip_for_request_uri(first)
        rest = [str(r) for r in routes[1:]]
        rest.append(f"<{self.remote_target}>")
        return request_uri, rest

    def next_hop(self) -> SipUri:
        """Where the request goes first (§8.1.2): the first route, or the target."""
        if self.route_set:
            return self.route_set[0].uri
        return self.remote_target


def _strip_for_request_uri(uri: SipUri) -> SipUri:
    """§19.1.1 Table 1: method, ttl and headers are not allowed in a Request-URI."""
    params = {k: v for k, v in uri.params.items() if k.lower() not in ("method", "ttl")}
    return SipUri(scheme=uri.scheme, user=uri.user, password=uri.password, host=uri.host,
                  port=uri.port, params=params)
