"""Cut a TCP/TLS byte stream into SIP messages (RFC 3261 §18.3, RFC 5626 §3.5.1).

`StreamFramer.feed(data)` buffers bytes and returns every complete message.  Framing
is by Content-Length, which is mandatory on streams.  CRLF keep-alives between
messages are recognised: on the server side (the default) a double CRLF is a ping
(answer it with a single CRLF pong) and a lone CRLF is ignored (RFC 3261 §7.5); on the
client side (``expect_pongs=True``, the side that sends pings) each CRLF is a pong.
The buffer is bounded: a header block that never ends, a
Content-Length over the limit or a broken Content-Length raise `SipParseError` and the
framer stays broken (the connection must be closed, RFC 4475 §3.1.2.3).  A message
that is framed correctly but malformed does not break the stream: it is recorded in
`rejected` (its `partial` says whether a 400 can be sent) and framing goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mobilityd.sip.errors import SipParseError, StatusCode
from mobilityd.sip.message import STREAM_LIMITS, ParseLimits, Request, Response, parse_message

_CONTENT_LENGTH_RE = re.compile(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*([^\r]*)(?=\r\n)", re.I)


@dataclass(frozen=True)
class PingReceived:
    """A CRLFCRLF keep-alive ping arrived: send a CRLF pong (RFC 5626 §3.5.1)."""


@dataclass(frozen=True)
class PongReceived:
    """A CRLF keep-alive pong arrived (RFC 5626 §3.5.1)."""


@dataclass(frozen=True)
class MessageRejected:
    """A framed message did not parse; ``error.partial`` tells whether to answer it."""

    error: SipParseError


FramerEvent = Request | Response | PingReceived | PongReceived | MessageRejected

PONG = b"\r\n"
PING = b"\r\n\r\n"


class StreamFramer:
    """Incremental SIP stream framer with bounded memory (RFC 3261 §18.3)."""

    def __init__(
        self,
        limits: ParseLimits = STREAM_LIMITS,
        max_header_block: int = 65536,
        *,
        expect_pongs: bool = False,
    ) -> None:
        self._limits = limits
        self._expect_pongs = expect_pongs
        self._max_header_block = max_header_block
        self._buffer = bytearray()
        self._error: SipParseError | None = None
        self.rejected: list[SipParseError] = []
        self.pings_received = 0
        self.pongs_received = 0

    @property
    def buffered(self) -> int:
        """Octets held waiting for the rest of a message."""
        return len(self._buffer)

    @property
    def broken(self) -> bool:
        """True after a framing error: the stream cannot be resynchronised."""
        return self._error is not None

    def feed(self, data: bytes) -> list[Request | Response]:
        """Add received bytes; return the complete messages, in order.

        Keep-alives are counted in `pings_received` / `pongs_received`, framed but
        malformed messages appended to `rejected`.  Raises SipParseError on a framing
        error (and on every later call).
        """
        messages: list[Request | Response] = []
        for event in self.feed_events(data):
            if isinstance(event, Request | Response):
                messages.append(event)
            elif isinstance(event, PingReceived):
                self.pings_received += 1
            elif isinstance(event, PongReceived):
                self.pongs_received += 1
            else:
                self.rejected.append(event.error)
        return messages

    def feed_events(self, data: bytes) -> list[FramerEvent]:
        """Like `feed` but returns keep-alives and rejected messages as events too."""
        if self._error is not None:
            raise self._error
        self._buffer += data
        events: list[FramerEvent] = []
        try:
            while self._next(events):
                pass
        except SipParseError as exc:
            self._error = exc
            self._buffer.clear()
            if events:
                return events  # deliver what came before; the error is raised next time
            raise
        return events

    def _next(self, events: list[FramerEvent]) -> bool:
        buffer = self._buffer
        if buffer.startswith(b"\r\n"):
            if self._expect_pongs:
                del buffer[:2]
                events.append(PongReceived())
                return True
            if buffer.startswith(PING):
                del buffer[:4]
                events.append(PingReceived())
                return True
            if len(buffer) < 4 and PING.startswith(buffer):
                return False  # the start of a ping: wait for the rest
            del buffer[:2]  # a stray CRLF before a start-line is ignored (RFC 3261 §7.5)
            return True
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(buffer) > self._max_header_block:
                raise SipParseError("header block too long", StatusCode.MESSAGE_TOO_LARGE)
            return False
        if head_end > self._max_header_block:
            raise SipParseError("header block too long", StatusCode.MESSAGE_TOO_LARGE)
        length = self._content_length(bytes(buffer[: head_end + 2]))
        end = head_end + 4 + length
        if len(buffer) < end:
            return False
        frame = bytes(buffer[:end])
        del buffer[:end]
        try:
            events.append(parse_message(frame, limits=self._limits, datagram=False))
        except SipParseError as exc:
            events.append(MessageRejected(exc))
        return True

    def _content_length(self, head: bytes) -> int:
        """Content-Length of a header block (RFC 3261 §20.14): present, one, in range."""
        values = _CONTENT_LENGTH_RE.findall(head)
        if not values:
            raise SipParseError("missing Content-Length on a stream transport")
        if len(values) > 1:
            raise SipParseError("more than one Content-Length header")
        text = values[0].strip(b" \t")
        if not text.isdigit():
            raise SipParseError("bad Content-Length value")
        if len(text) > 10 or int(text) > self._limits.max_body:
            raise SipParseError("body too large", StatusCode.REQUEST_ENTITY_TOO_LARGE)
        return int(text)
