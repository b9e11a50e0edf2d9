"""The MIKEY identity of a SIP party (RFC 3830 §6.7 ID payload, type URI).

A call is secure only if the identities MIKEY authenticated are the SIP identities of
the dialog: IDi (or the SAN URI of the Initiator's certificate, RFC 3830 §4.3.2) must be
the From of the caller, IDr (or the Responder's certificate SAN) the To of the callee.
Our engines enforce it by being told the expected peer identity: the Responder gets the
From identity as ``peer_id`` (a contradicting IDi is ``AUTH_FAILURE``, a certificate
naming someone else too), an Initiator gets the To identity as ``peer_id``.

Canonical form (our choice, listed in :mod:`mobilityd.call`): ``scheme ":" [user "@"] host``
with the host lower-cased, without port, parameters or headers -- the address-of-record
part of the URI that both ends can derive from the dialog alone.
"""

from __future__ import annotations

from mobilityd.sip.uri import NameAddr, SipUri

__all__ = ["sip_identity"]


def sip_identity(party: SipUri | NameAddr | str) -> bytes:
    """The MIKEY identity (ID payload data) of a SIP URI, name-addr or URI text."""
    if isinstance(party, str):
        party = SipUri.parse(party.strip().strip("<>"))
    uri = party.uri if isinstance(party, NameAddr) else party
    if not uri.host:  # tel: (RFC 3966): the number is the identity
        return f"{uri.scheme.lower()}:{uri.user or ''}".encode()
    user = f"{uri.user}@" if uri.user else ""
    return f"{uri.scheme.lower()}:{user}{uri.host.lower()}".encode()
