"""Per-call state of the :class:`~mobilityd.call.agent.CallAgent`.

A :class:`SecureCall` keeps, for its whole life, the SIP dialog handle (``call_id``,
the key of :class:`mobilityd.sip.useragent.UserAgent` calls), the negotiation outcome
(:class:`~mobilityd.call.negotiation.NegotiatedMedia`: MIKEY ``context``, SSRCs, suite,
remote addresses), the :class:`~mobilityd.media.endpoint.MediaEndpoint` (its ``tx`` /
``rx`` SRTP sessions are the same objects until the call ends: roaming rebinds the
endpoint, it never rekeys it), the paced sender, the sinks and counters.

:func:`open_media` builds the endpoint from the negotiation: one SRTP stream per SSRC
per direction keyed from ``CryptoContext.srtp_master(cs_id)`` as the CS ID map says
(RFC 3830 §4.1.3, §6.1.1; :func:`mobilityd.media.keying.sessions_for_call`), the suite
from the SP payload (§6.10.1), RTCP on port + 1 or muxed (RFC 5761) with periodic
SRTCP reports (:mod:`mobilityd.call.rtcp_session`). The paced sender sends one packet
per ``NegotiatedMedia.ptime_ms`` (the peer's ``a=ptime``, RFC 8866 §6.4) of
``ptime_ms * 8`` samples, on a :class:`~mobilityd.media.pacing.FrameScheduler` whose
period is that packet time (``call.scheduler``).
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mobilityd.call.audio import AudioOptions, PcmTee, ToneMonitor, samples_for_ptime
from mobilityd.call.negotiation import AnswerPlan, NegotiatedMedia, Offerer
from mobilityd.call.ports import MediaPortRange, PortReservation, range_binder
from mobilityd.call.rtcp_session import CallRtcp
from mobilityd.call.sdpmedia import MediaPort
from mobilityd.media.endpoint import MediaEndpoint
from mobilityd.media.errors import SrtpConfigError
from mobilityd.media.events import Address, MediaEvent
from mobilityd.media.g711 import G711PayloadType
from mobilityd.media.keying import sessions_for_call
from mobilityd.media.pacing import FrameScheduler, G711Encoder, PacedRtpSender
from mobilityd.media.sink import G711Sink
from mobilityd.media.srtp import SrtpSession
from mobilityd.media.stream import StreamParams
from mobilityd.media.wav import WavRecorder
from mobilityd.mikey.context import CryptoContext
from mobilityd.mikey.session import Rng

__all__ = ["CallRole", "CallState", "PortReservation", "SecureCall", "open_media"]


class CallRole(enum.StrEnum):
    CALLER = "caller"
    CALLEE = "callee"


class CallState(enum.StrEnum):
    """Life cycle: CALLING / RINGING -> CONNECTED -> ENDED, or -> FAILED."""

    CALLING = "calling"
    RINGING = "ringing"
    CONNECTED = "connected"
    ENDED = "ended"
    FAILED = "failed"


@dataclass(eq=False)
class SecureCall:
    """One call (see the module docstring). Public fields are read-only for users."""

    call_id: str
    role: CallRole
    peer: str
    audio: AudioOptions
    state: CallState = CallState.CALLING
    offerer: Offerer | None = field(default=None, repr=False)
    plan: AnswerPlan | None = field(default=None, repr=False)
    reservations: list[PortReservation] = field(default_factory=list, repr=False)
    negotiated: NegotiatedMedia | None = None
    media: MediaEndpoint | None = field(default=None, repr=False)
    sender: PacedRtpSender | None = field(default=None, repr=False)
    sink: G711Sink | None = field(default=None, repr=False)
    monitor: ToneMonitor = field(default_factory=ToneMonitor, repr=False)
    recorder: WavRecorder | None = field(default=None, repr=False)
    local_ip: str = ""
    local_sdp: bytes = field(default=b"", repr=False)
    remote_sdp: bytes = field(default=b"", repr=False)
    method: str | None = None
    end_reason: str = ""
    media_events: list[MediaEvent] = field(default_factory=list, repr=False)
    rtcp: CallRtcp | None = field(default=None, repr=False)
    rtcp_task: asyncio.Task[None] | None = field(default=None, repr=False)
    #: the scheduler the sender runs on (its period is the packet time we send at)
    scheduler: FrameScheduler | None = field(default=None, repr=False)
    #: SRTP sessions keyed while ringing for these negotiated media (:func:`prepare_srtp`)
    srtp_ready: tuple[NegotiatedMedia, SrtpSession, SrtpSession] | None = field(
        default=None, repr=False)

    @property
    def secure(self) -> bool:
        return self.negotiated is not None and self.negotiated.secure

    @property
    def context(self) -> CryptoContext | None:
        """The MIKEY crypto context (None for a plain call or before the answer)."""
        return self.negotiated.context if self.negotiated is not None else None

    def release_ports(self) -> None:
        for reservation in self.reservations:
            reservation.release()
        self.reservations = []

    def stop_media(self, scheduler: FrameScheduler) -> None:
        """Stop sending (on ``call.scheduler``, else ``scheduler``), close the endpoint
        and the recorder, release reserved ports."""
        if self.rtcp_task is not None:
            self.rtcp_task.cancel()
            self.rtcp_task = None
        if self.sender is not None:
            self.sender.stop(self.scheduler or scheduler)
            self.sender = None
        if self.media is not None:
            self.media.close()
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        self.release_ports()

    def counters(self) -> dict[str, Any]:
        """Endpoint counters plus per-SSRC SRTP counters (packets, auth failures ...)."""
        out: dict[str, Any] = {}
        media = self.media
        if media is None:
            return out
        out["endpoint"] = media.counters.as_dict()
        for name, session in (("tx", media.tx), ("rx", media.rx)):
            if session is not None:
                out[name] = {
                    f"{ssrc:#010x}": {
                        "packets": snap.packets, "octets": snap.octets,
                        "auth_failures": snap.auth_failures, "replays": snap.replays,
                        "lost": snap.lost,
                    }
                    for ssrc in session.ssrcs for snap in (session.counters(ssrc),)
                }
        if self.rtcp is not None:
            out["rtcp"] = {"reports_sent": self.rtcp.reports_sent,
                           "malformed": self.rtcp.malformed,
                           "round_trip_s": self.rtcp.reporter.round_trip}
        if self.sink is not None:
            out["sink"] = {"packets_written": self.sink.packets_written,
                           "late_or_duplicate": self.sink.late_or_duplicate}
        return out

    def summary(self) -> dict[str, Any]:
        """A JSON-able description for list_calls / status."""
        negotiated = self.negotiated
        return {
            "id": self.call_id,
            "role": self.role.value,
            "peer": self.peer,
            "state": self.state.value,
            "secure": self.secure,
            "key_agreement": self.method,
            "suite": negotiated.suite.name if negotiated and negotiated.suite else None,
            "local_media": list(self.media.local_rtp) if self.media is not None else None,
            "remote_media": list(self.media.remote_rtp)
            if self.media is not None and self.media.remote_rtp is not None else None,
            "reason": self.end_reason or None,
        }


def prepare_srtp(call: SecureCall, negotiated: NegotiatedMedia) -> None:
    """Key the callee's SRTP sessions while the phone rings, so that picking up does not
    wait for the key derivation (RFC 3830 §4.1.3; the answering delay runs from pick-up
    to the ACK). No packet flows before the answer, so the sessions are as if made then;
    keys that cannot be used are left for :func:`open_media` to report as before."""
    context = negotiated.context
    if not negotiated.secure or context is None or negotiated.remote_ssrc is None:
        return
    try:
        tx, rx = sessions_for_call(context, [negotiated.local_ssrc], [negotiated.remote_ssrc])
    except SrtpConfigError:
        return
    call.srtp_ready = (negotiated, tx, rx)


async def open_media(
    call: SecureCall,
    negotiated: NegotiatedMedia,
    port: MediaPort | None,
    scheduler: FrameScheduler,
    rng: Rng,
    *,
    local_ip: str,
    netns: str | None = None,
    wall: Callable[[], float] = time.time,
    port_range: MediaPortRange | None = None,
) -> None:
    """Open the call's endpoint from ``negotiated`` and start sending (module docstring).

    ``port``: the RTP port to bind (the reserved one), None for any. ``scheduler``
    must tick every ``negotiated.ptime_ms``. ``port_range``: where a roaming rebind
    goes when the call's ports are taken on the new address.
    """
    period_ms = round(scheduler.period * 1000)
    if period_ms != negotiated.ptime_ms:
        raise ValueError(f"scheduler period {period_ms} ms, the call sends every "
                         f"{negotiated.ptime_ms} ms")
    tx = rx = None
    ready, call.srtp_ready = call.srtp_ready, None
    if ready is not None and ready[0] is negotiated:
        tx, rx = ready[1], ready[2]
    elif negotiated.secure:
        context = negotiated.context
        assert context is not None and negotiated.remote_ssrc is not None
        tx, rx = sessions_for_call(context, [negotiated.local_ssrc], [negotiated.remote_ssrc])
    call.recorder = call.audio.recorder()
    writer = PcmTee(call.monitor, call.recorder) if call.recorder else PcmTee(call.monitor)
    sink = call.sink = G711Sink(writer)
    loop = asyncio.get_running_loop()
    rtcp = call.rtcp = CallRtcp(negotiated.local_ssrc, b"mobilityd@" + local_ip.encode())

    def on_rtp(plain: bytes, source: Address) -> None:
        rtcp.rtp_received(plain, loop.time())
        sink(plain, source)

    def on_rtcp(plain: bytes, source: Address) -> None:
        del source
        rtcp.rtcp_received(plain, loop.time(), wall())

    endpoint = MediaEndpoint(
        local_ip, tx=tx, rx=rx, remote_rtp=negotiated.remote_rtp,
        remote_rtcp=negotiated.remote_rtcp, rtcp_mux=negotiated.rtcp_mux,
        local_port=port.rtp_port if port is not None else 0, on_rtp=on_rtp, on_rtcp=on_rtcp,
        on_event=call.media_events.append, netns=netns,
    )
    if port_range is not None:
        endpoint.rebind_pairs = range_binder(port_range, netns)
    await endpoint.open()
    call.media = endpoint
    samples = samples_for_ptime(negotiated.ptime_ms)
    params = StreamParams(
        ssrc=negotiated.local_ssrc, payload_type=negotiated.payload_type,
        first_sequence=int.from_bytes(rng(2), "big") & 0x7FFF,
        first_timestamp=int.from_bytes(rng(4), "big"),
        samples_per_frame=samples,
    )
    law = G711PayloadType(negotiated.payload_type)
    call.sender = PacedRtpSender(params, G711Encoder(call.audio.source(samples), law),
                                 endpoint.send_rtp)
    call.scheduler = scheduler
    call.sender.start(scheduler)
    rtcp.sender = call.sender
    call.rtcp_task = loop.create_task(rtcp.run(endpoint, rng, wall))
