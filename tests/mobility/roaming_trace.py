"""Timeline of one move across the two party processes (issue 5 media gap analysis).

:func:`install` wraps, in the party process only, the methods a move goes through and
appends ``(CLOCK_MONOTONIC seconds, stage, detail)`` to :data:`STAMPS` (the clock is
shared by every process of the machine, so Alice's and Bob's stamps line up). The
stages, in the order of one move:

Bob (moving side): ``netlink_readable`` (the watcher's socket woke the loop),
``netlink_parsed`` (the watcher returned the batch's events), ``evaluate_start`` /
``evaluate_done`` (the path monitor's route lookups and coalescer for that batch),
``decision`` (the path monitor returned a move), ``media_rebound``, ``announce_sent``
(SRTCP empty RR from the new address), ``sip_rebound``, ``offer_built``,
``reinvite_sent`` (the datagram left the SIP transport), ``rtp_in`` (each decrypted
packet from Alice).

Alice (peer): ``sip_in`` (a datagram reached the SIP transport), ``reinvite_received``
(the UA handed the re-INVITE to the guard), ``update_verified`` (RFC 3830 §4.5
verification done), ``rtcp_in`` / ``rtp_in_new`` (authenticated SRTCP/SRTP from an
address we do not send to), ``switched`` (return-routability gate confirmed the new
address, RFC 3711 §3.3 authenticated source), ``resent`` (the last SRTP packet went
again), ``tick`` (each paced audio frame sent).

Only the test harness uses this; nothing in :mod:`mobilityd` knows about it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from mobilityd.media.endpoint import MediaEndpoint
from mobilityd.mobility import roaming
from mobilityd.mobility.pathmonitor import PathMonitor
from mobilityd.mobility.roaming import CallMover, MoveGuard
from mobilityd.net.watcher import NetlinkWatcher
from mobilityd.sip import sip_core
from mobilityd.sip.endpoint import SipEndpoint
from mobilityd.sip.transport.udp import UdpTransport
from mobilityd.sip.useragent import UserAgent

#: (monotonic seconds, stage, detail, thread CPU seconds); bounded by the reader
STAMPS: list[tuple[float, str, str, float]] = []
MAX_STAMPS = 20000


def stamp(stage: str, detail: str = "") -> None:
    if len(STAMPS) < MAX_STAMPS:
        STAMPS.append((time.monotonic(), stage, detail, time.thread_time()))


def _after(cls: type, name: str, stage: str,
           detail: Callable[..., str] | None = None) -> None:
    original = getattr(cls, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        stamp(stage, detail(*args, **kwargs) if detail is not None else "")
        return result

    setattr(cls, name, wrapper)


def _after_async(cls: type, name: str, stage: str) -> None:
    original = getattr(cls, name)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        stamp(stage, repr(result) if not isinstance(result, list) else str(len(result)))
        return result

    setattr(cls, name, wrapper)


def _before(cls: type, name: str, stage: str,
            detail: Callable[..., str] | None = None) -> None:
    original = getattr(cls, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        stamp(stage, detail(*args, **kwargs) if detail is not None else "")
        return original(*args, **kwargs)

    setattr(cls, name, wrapper)


def _sip_kind(self: object, data: bytes, *_: object) -> str:
    return data[:16].split(b" ", 1)[0].decode(errors="replace")


def install(role: str) -> None:
    """Wrap the move's stages for ``role`` (both roles get every wrapper; a stage that
    does not happen on a side simply never stamps)."""
    del role
    if sip_core() != "python":
        raise RuntimeError("roaming_trace wraps SIP methods, which the mypyc-compiled core "
                           "refuses: start the party with MOBILITYD_SIP_CORE=python")
    _before(NetlinkWatcher, "_on_readable", "netlink_readable")
    _after_async(PathMonitor, "next_decisions", "decision")
    _after_async(NetlinkWatcher, "next_events", "netlink_parsed")
    _before(PathMonitor, "_evaluate", "evaluate_start")
    _after_async(PathMonitor, "_evaluate", "evaluate_done")
    _after_async(MediaEndpoint, "rebind", "media_rebound")
    _after(MediaEndpoint, "announce", "announce_sent")
    _after_async(SipEndpoint, "rebind", "sip_rebound")
    _after(CallMover, "send_offer", "offer_sent")
    _before(UdpTransport, "send", "sip_out", lambda self, data, remote: _sip_kind(self, data))
    _before(UdpTransport, "datagram_received", "sip_in", _sip_kind)
    _before(MoveGuard, "decide", "reinvite_received")
    _after(MoveGuard, "_accept", "accepted")
    _before(MediaEndpoint, "_rtcp_in", "rtcp_in",
            lambda self, data, source: f"{source[0]}:{source[1]}")
    _after(MediaEndpoint, "_switched", "switch_checked",
           lambda self, events: f"{len(events)} events, resent {self.counters.rtp_resent}")
    verify = roaming.verify_move  # type: ignore[attr-defined]

    @functools.wraps(verify)
    def verify_move(*args: Any, **kwargs: Any) -> Any:
        stamp("verify_start")
        result = verify(*args, **kwargs)
        stamp("update_verified")
        return result

    roaming.verify_move = verify_move  # type: ignore[attr-defined]
    offer = roaming.move_offer  # type: ignore[attr-defined]

    @functools.wraps(offer)
    def move_offer(*args: Any, **kwargs: Any) -> Any:
        stamp("offer_start")
        result = offer(*args, **kwargs)
        stamp("offer_built")
        return result

    roaming.move_offer = move_offer  # type: ignore[attr-defined]
    _before(UserAgent, "reinvite", "ua_reinvite_start")
    _after(UserAgent, "reinvite", "ua_reinvite_done")
    _before(UserAgent, "accept_reinvite", "ua_accept_start")
    _after(UserAgent, "accept_reinvite", "ua_accept_done")
    _before(MediaEndpoint, "propose_remote", "propose_start")
