"""Requests the UA core builds (RFC 3261 §8.1.1, §12.2.1.1, §9.1, §13.2.2.4).

Pure functions from dialog/call state to ``Request`` values; identifiers (tags,
branches, Call-IDs) come from the caller, which draws them from the injected rng.
"""

from __future__ import annotations

from collections.abc import Callable

from mobilityd.sip.dialog import Dialog
from mobilityd.sip.headers import Headers
from mobilityd.sip.message import Request
from mobilityd.sip.transaction.layer import MAGIC_COOKIE
from mobilityd.sip.transaction.outbound import Addr
from mobilityd.sip.uri import NameAddr, SipUri

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, UPDATE"
SUPPORTED = "replaces, timer"

Rng = Callable[[int], bytes]


def new_branch(rng: Rng) -> str:
    """A §8.1.1.7 branch: the magic cookie plus randomness unique per transaction."""
    return MAGIC_COOKIE + rng(10).hex()


def new_tag(rng: Rng) -> str:
    """A §19.3 tag: at least 32 bits of randomness."""
    return rng(6).hex()


def new_call_id(rng: Rng, host: str) -> str:
    """A §8.1.1.4 Call-ID: globally unique, random, with our host."""
    return f"{rng(12).hex()}@{host}"


def sent_by(host: str, port: int) -> str:
    """Via ``sent-by = host [":" port]``, an IPv6 address as ``IPv6reference`` in
    brackets (RFC 3261 §25.1)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def via_value(transport: str, sent_by: str, branch: str) -> str:
    """Our Via (§8.1.1.7) with ``rport`` so that replies follow NATs (RFC 3581 §3)."""
    return f"SIP/2.0/{transport} {sent_by};branch={branch};rport"


def destination_of(uri: SipUri) -> Addr:
    """§8.1.2 / RFC 3263 without DNS: maddr or host, the port or the scheme default.
    A host name is handed to the transport adapter, which resolves it."""
    host = uri.maddr or uri.host
    if host.startswith("["):
        host = host[1:-1]
    port = uri.port or (5061 if uri.scheme == "sips" else 5060)
    return (host, port)


def in_dialog_request(
    dialog: Dialog,
    method: str,
    *,
    via: str,
    cseq: int,
    contact: bool,
    body: bytes = b"",
    content_type: str | None = None,
    extra: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
    routing: tuple[SipUri, list[str]] | None = None,
) -> Request:
    """§12.2.1.1: To/From/Call-ID from the dialog, CSeq, Route and Request-URI from the
    route set (loose or strict routing), Contact for target refresh requests.
    ``routing`` (Request-URI, Route values) overrides the dialog's: see
    ``rerouting_via_proxy``."""
    request_uri, routes = dialog.request_routing() if routing is None else routing
    items: list[tuple[str, str]] = [
        ("Via", via),
        ("Max-Forwards", "70"),
        ("From", f"{dialog.local_uri};tag={dialog.local_tag}"),
        ("To", _to_value(dialog)),
        ("Call-ID", dialog.call_id),
        ("CSeq", f"{cseq} {method}"),
    ]
    items.extend(("Route", route) for route in routes)
    if contact:
        items.append(("Contact", f"<{dialog.local_target}>"))
    items.extend(extra)
    if body:
        items.append(("Content-Type", content_type or "application/sdp"))
    return Request(method, request_uri, Headers(items), body)


def rerouting_via_proxy(dialog: Dialog, proxy: SipUri) -> tuple[SipUri, list[str]]:
    """Request-URI and Route for an in-dialog request re-sent through ``proxy`` after
    the peer's remote target stopped answering (it moved too): the remote target when
    it is a GRUU (RFC 5627 §3: ``gr`` parameter, routable to that one device through
    its registrar), else the peer's address-of-record (the To/From URI of the dialog),
    which the proxy resolves to the peer's current registered contact.  The proxy is a
    pre-loaded loose route (RFC 3261 §8.1.2, §16.12)."""
    target = dialog.remote_target
    if "gr" not in target.params:
        target = NameAddr.parse(dialog.remote_uri).uri
    return target, [f"<{proxy.with_params(lr=None)}>"]


def ack_for_2xx(dialog: Dialog, *, via: str, cseq: int, body: bytes = b"") -> Request:
    """§13.2.2.4: the ACK for a 2xx is a new in-dialog request (own branch) with the
    INVITE's CSeq number; it is sent outside any transaction."""
    return in_dialog_request(dialog, "ACK", via=via, cseq=cseq, contact=False, body=body)


def cancel_for(invite: Request) -> Request:
    """§9.1: same Request-URI, Call-ID, To, From, CSeq number and top Via (same branch)
    as the INVITE, the INVITE's Route headers, method CANCEL."""
    source = invite.headers
    items: list[tuple[str, str]] = [("Via", source.get_all("Via")[0])]
    items.extend(("Route", value) for value in source.get_all("Route"))
    items += [
        ("Max-Forwards", "70"),
        ("From", source.get("From") or ""),
        ("To", source.get("To") or ""),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.seq} CANCEL"),
    ]
    return Request("CANCEL", invite.uri, Headers(items), b"")


def _to_value(dialog: Dialog) -> str:
    if dialog.remote_tag:
        return f"{dialog.remote_uri};tag={dialog.remote_tag}"
    return str(dialog.remote_uri)
