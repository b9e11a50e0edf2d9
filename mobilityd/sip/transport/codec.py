"""The SIP codec the transports use: ``parse_message`` for datagrams, ``StreamFramer``
for streams (RFC 3261 §18.3), mapped to the transport's framer protocol."""

from __future__ import annotations

from collections.abc import Sequence

from mobilityd.sip.framing import MessageRejected, PingReceived, PongReceived, StreamFramer
from mobilityd.sip.message import Request, Response, parse_message
from mobilityd.sip.transport.base import KeepAlive

SipMessage = Request | Response


class SipStreamFramer:
    """Adapts :class:`StreamFramer` events to messages, keep-alives and parse errors."""

    def __init__(self) -> None:
        self._framer = StreamFramer()

    def feed(self, data: bytes) -> Sequence[SipMessage | KeepAlive | Exception]:
        items: list[SipMessage | KeepAlive | Exception] = []
        for event in self._framer.feed_events(data):
            if isinstance(event, PingReceived):
                items.append(KeepAlive.PING)
            elif isinstance(event, PongReceived):
                items.append(KeepAlive.PONG)
            elif isinstance(event, MessageRejected):
                items.append(event.error)
            else:
                items.append(event)
        return items


class SipCodec:
    """Datagram and stream decoding of SIP messages; raises only ``SipParseError``."""

    def parse(self, data: bytes) -> SipMessage:
        return parse_message(data)

    def new_framer(self) -> SipStreamFramer:
        return SipStreamFramer()
