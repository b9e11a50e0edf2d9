"""Re-INVITE to a peer that moved too (issue 5): with ``UaConfig.reroute_via_proxy``
a re-INVITE that the peer's old remote target never answers (Timer B, RFC 3261
§17.1.1.2) or whose transport fails (§17.1.4) is re-sent once through the outbound
proxy to the peer's AOR, instead of ending the dialog (§12.2.1.2)."""

from __future__ import annotations

import hashlib

from mobilityd.sip import events as ev
from mobilityd.sip.headers import Via
from mobilityd.sip.message import Request, Response, parse_message
from mobilityd.sip.transaction.outbound import Addr, Outgoing, TransportKind
from mobilityd.sip.ua.memnet import MemoryNetwork, Node
from mobilityd.sip.ua.session import CallPhase
from mobilityd.sip.uri import SipUri
from mobilityd.sip.useragent import UserAgent
from tests.sip.uafixtures import ALICE, BOB, SDP, auto_answer, make_ua

PROXY = ("10.0.0.3", 5060)
BOB_MOVED = ("10.0.1.2", 5060)
BOB_AOR = SipUri.parse("sip:bob@example.org")


class MemoryProxy:
    """A stateless forwarding proxy with a location service (RFC 3261 §16.11), just
    enough for the tests: strips its own Route, resolves an AOR Request-URI to the
    registered contact, adds its Via (deterministic branch, §16.11) and sends
    responses back along the Via path.  Duck-types the ``UserAgent`` surface that
    ``MemoryNetwork`` drives."""

    def __init__(self, address: Addr) -> None:
        self.address = address
        self.location: dict[str, SipUri] = {}
        self.forwarded: list[Request] = []
        self._out: list[Outgoing] = []

    def register(self, aor: SipUri, contact: SipUri) -> None:
        self.location[f"{aor.user}@{aor.host}"] = contact

    def receive(self, data: bytes, source: Addr, now: float) -> None:
        message = parse_message(data)
        if isinstance(message, Response):
            self._forward_response(message)
        else:
            self._forward_request(message, source)

    def _forward_request(self, request: Request, source: Addr) -> None:
        headers = request.headers.copy()
        routes = headers.get_all("Route")
        if routes and f"{self.address[0]}:{self.address[1]}" in routes[0]:
            headers.remove_first("Route")  # §16.4: our own loose route
        uri = self.location.get(f"{request.uri.user}@{request.uri.host}", request.uri)
        top = Via.parse(headers.get_all("Via")[0])
        if top.host != source[0] or top.port != source[1]:
            headers.remove_first("Via")
            headers.prepend("Via", str(top.with_params(received=source[0],
                                                       rport=str(source[1]))))
        branch = hashlib.sha256((top.branch or "").encode()).hexdigest()[:16]
        headers.prepend("Via", f"SIP/2.0/UDP {self.address[0]}:{self.address[1]}"
                               f";branch=z9hG4bK{branch}")
        forwarded = Request(request.method, uri, headers, request.body)
        self.forwarded.append(forwarded)
        next_hop = headers.get_all("Route")
        target = SipUri.parse(next_hop[0].strip("<>")) if next_hop else uri
        self._out.append(Outgoing(bytes(forwarded), (target.host, target.port or 5060),
                                  TransportKind.UDP))

    def _forward_response(self, response: Response) -> None:
        headers = response.headers.copy()
        headers.remove_first("Via")
        vias = headers.get_all("Via")
        if not vias:
            return
        via = Via.parse(vias[0])
        destination = (via.received or via.host, via.rport or via.port or 5060)
        out = Response(response.status, response.reason, headers, response.body)
        self._out.append(Outgoing(bytes(out), destination, TransportKind.UDP))

    def datagrams_to_send(self) -> list[Outgoing]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> None:
        return None

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        return None


def _setup(*, reroute: bool) -> tuple[MemoryNetwork, Node, Node, MemoryProxy, str]:
    """Alice calls Bob's AOR through the proxy; the call is established."""
    net = MemoryNetwork()
    proxy_uri = SipUri.parse(f"sip:{PROXY[0]}:{PROXY[1]}")
    alice = net.attach(ALICE, make_ua("alice", ALICE, 11, outbound_proxy=proxy_uri,
                                      reroute_via_proxy=reroute))
    bob = net.attach(BOB, make_ua("bob", BOB, 12), auto_answer)
    proxy = MemoryProxy(PROXY)
    net.attach(PROXY, proxy)  # type: ignore[arg-type]
    proxy.register(BOB_AOR, SipUri.parse(f"sip:bob@{BOB[0]}:{BOB[1]}"))
    call_id = alice.ua.invite(BOB_AOR, net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.CallEstablished)))
    net.advance(1.0)
    assert bob.ua.call(call_id).phase is CallPhase.ESTABLISHED
    return net, alice, bob, proxy, call_id


def _bob_moves(net: MemoryNetwork, bob: Node, proxy: MemoryProxy) -> None:
    """Bob's address changes; he re-registers (the proxy learns the new contact)."""
    net.move(bob, BOB_MOVED)
    assert isinstance(bob.ua, UserAgent)
    bob.ua.set_local_address(*BOB_MOVED)
    proxy.register(BOB_AOR, SipUri.parse(f"sip:bob@{BOB_MOVED[0]}:{BOB_MOVED[1]}"))


def test_reinvite_to_a_dead_target_reaches_the_moved_peer_through_the_proxy() -> None:
    net, alice, bob, proxy, call_id = _setup(reroute=True)
    _bob_moves(net, bob, proxy)
    alice.ua.reinvite(call_id, net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.ReinviteAccepted) or alice.of_type(ev.ReinviteFailed)
                         or alice.of_type(ev.CallEnded)))
    assert alice.of_type(ev.ReinviteAccepted), alice.events
    (rerouted,) = alice.of_type(ev.ReinviteRerouted)
    assert isinstance(rerouted, ev.ReinviteRerouted)
    assert rerouted.request_uri == BOB_AOR  # the AOR, resolved by the proxy
    invites = list(dict.fromkeys(  # retransmissions pass the stateless proxy too
        (r.uri.host, r.cseq.seq) for r in proxy.forwarded if r.method == "INVITE"))
    assert invites == [(BOB[0], 1), (BOB[0], 2), (BOB_MOVED[0], 3)]  # call, dead, rerouted
    # §12.2.1.2: the 2xx's Contact (Bob's new address) is Alice's remote target now.
    dialog = alice.ua.call(call_id).dialog
    assert dialog is not None
    assert (dialog.remote_target.host, dialog.remote_target.port) == BOB_MOVED
    # The ACK reached Bob (no 2xx retransmission, no BYE after 64*T1) and the dialog
    # carries on: an in-dialog OPTIONS is answered.
    net.advance(40.0)
    assert alice.ua.call(call_id).phase is CallPhase.ESTABLISHED
    assert bob.ua.call(call_id).phase is CallPhase.ESTABLISHED
    assert not alice.of_type(ev.CallEnded) and not bob.of_type(ev.CallEnded)
    alice.ua.send_options(call_id, net.now)
    net.run(lambda: bool(alice.of_type(ev.RequestAnswered)))
    (answered,) = alice.of_type(ev.RequestAnswered)
    assert isinstance(answered, ev.RequestAnswered) and answered.response.status == 200


def test_without_the_option_the_dialog_ends_as_rfc3261_says() -> None:
    """§12.2.1.2: a 408 (Timer B) to an in-dialog request ends the dialog."""
    net, alice, bob, proxy, call_id = _setup(reroute=False)
    _bob_moves(net, bob, proxy)
    alice.ua.reinvite(call_id, net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.CallEnded)))
    (failed,) = alice.of_type(ev.ReinviteFailed)
    assert isinstance(failed, ev.ReinviteFailed) and failed.status == 408
    assert not alice.of_type(ev.ReinviteRerouted)


def test_a_rerouted_reinvite_that_fails_too_ends_the_dialog() -> None:
    """Only one reroute: when the peer is unreachable through the proxy as well, the
    re-INVITE fails (408) and the dialog ends (§12.2.1.2)."""
    net, alice, bob, proxy, call_id = _setup(reroute=True)
    _bob_moves(net, bob, proxy)
    proxy.register(BOB_AOR, SipUri.parse("sip:bob@10.9.9.9:5060"))  # gone everywhere
    alice.ua.reinvite(call_id, net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.CallEnded)))
    assert len(alice.of_type(ev.ReinviteRerouted)) == 1
    (failed,) = alice.of_type(ev.ReinviteFailed)
    assert isinstance(failed, ev.ReinviteFailed) and failed.status == 408
    assert [r.uri for r in proxy.forwarded if r.method == "INVITE"][-1].host == "10.9.9.9"


def test_transport_failure_towards_the_old_target_is_rerouted_at_once() -> None:
    """§17.1.4: a transport error (ICMP unreachable) counts like a timeout (503) and
    is rerouted without waiting for Timer B."""
    net, alice, bob, proxy, call_id = _setup(reroute=True)
    _bob_moves(net, bob, proxy)
    alice.ua.reinvite(call_id, net.now, body=SDP)
    started = net.now
    alice.ua.transport_failed(PROXY, net.now)  # as the adapter would report
    net.run(lambda: bool(alice.of_type(ev.ReinviteAccepted) or alice.of_type(ev.CallEnded)))
    assert alice.of_type(ev.ReinviteRerouted) and alice.of_type(ev.ReinviteAccepted)
    assert net.now - started < 1.0  # no 32 s Timer B wait (simulated clock)
