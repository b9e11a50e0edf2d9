"""The ACK a client transaction builds for a non-2xx final response (§17.1.1.3)."""

from __future__ import annotations

from mobilityd.sip.headers import Headers
from mobilityd.sip.message import Request, Response


def make_non2xx_ack(request: Request, response: Response) -> Request:
    """RFC 3261 §17.1.1.3: same Request-URI, Call-ID, From and CSeq number as the
    INVITE, the To of the response, only the top Via, the INVITE's Route headers."""
    source = request.headers
    items: list[tuple[str, str]] = [("Via", source.get_all("Via")[0])]
    items.extend(("Route", value) for value in source.get_all("Route"))
    items += [
        ("Max-Forwards", "70"),
        ("From", source.get("From") or ""),
        ("To", response.headers.get("To") or ""),
        ("Call-ID", request.call_id),
        ("CSeq", f"{request.cseq.seq} ACK"),
        ("Content-Length", "0"),
    ]
    return Request("ACK", request.uri, Headers(items), b"")
