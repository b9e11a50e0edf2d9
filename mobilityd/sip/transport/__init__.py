"""SIP transports (asyncio): UDP, TCP and TLS that can move to a new local address.

RFC 3261 §18 (transport layer), RFC 3581 (rport), RFC 5626 §4.4.1 (CRLF keep-alive).
The transports carry whole SIP messages: a datagram each on UDP, Content-Length framed
on streams by the injected codec's framer. They never interpret SIP beyond that; the
endpoint (:mod:`mobilityd.sip.endpoint`) feeds what they deliver to the UA engine.
"""

from mobilityd.sip.transport.base import (
    Address,
    Flow,
    Framer,
    KeepAlive,
    MessageCodec,
    MessageSink,
    TransportClosed,
    TransportError,
    TransportKind,
)
from mobilityd.sip.transport.codec import SipCodec, SipMessage
from mobilityd.sip.transport.stream import StreamLimits, StreamTransport
from mobilityd.sip.transport.tls import client_context, server_context
from mobilityd.sip.transport.udp import UdpTransport

__all__ = [
    "Address",
    "Flow",
    "Framer",
    "KeepAlive",
    "MessageCodec",
    "MessageSink",
    "SipCodec",
    "SipMessage",
    "StreamLimits",
    "StreamTransport",
    "TransportClosed",
    "TransportError",
    "TransportKind",
    "UdpTransport",
    "client_context",
    "server_context",
]
