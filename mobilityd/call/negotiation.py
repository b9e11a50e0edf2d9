"""Offer/answer with MIKEY key management, sans-I/O (RFC 3264, RFC 8866, RFC 4567).

Both engines take ``now`` (Unix seconds: MIKEY timestamps are NTP-based, RFC 3830
§6.6) and ``rng``; they never touch a socket or a clock.

Codecs and packet time: both engines take the account's G.711 payload types in
preference order (``payload_types``, from ``[media] codecs``) and its packet time
(``ptime_ms``, ``[media] ptime_ms``). An offer lists the formats in that order (RFC 3264
§5.1: the first is preferred) with ``a=ptime`` (RFC 8866 §6.4); an answer picks the first
of *our* preferences that the offer contains (RFC 3264 §6.1: the answer's formats are a
subset of the offer's) and the offerer uses the first format of the answer it offered.
``a=ptime`` is the receiver's recommendation for the packetization (RFC 8866 §6.4): we
send at the peer's ``a=ptime`` when it is within 10..120 ms
(:data:`~mobilityd.call.sdpmedia.PTIME_RANGE_MS`), else at our own
(:attr:`NegotiatedMedia.ptime_ms`).

**Offerer** (the caller): :meth:`Offerer.make_offer` builds the SDP for the account's
:class:`CallSecurity` (RFC 4567 §4.1.2, thesis §11.3):

* ``required``: one ``RTP/SAVP`` stream with ``a=key-mgmt:mikey`` (the I_MESSAGE);
* ``preferred``: the same stream plus an ``RTP/AVP`` alternative; the answerer refuses
  one of them with port 0 (RFC 3264 §6) and the secure one wins when both are accepted;
* ``off``: one ``RTP/AVP`` stream, no MIKEY.

The I_MESSAGE authenticates the offered protocol list in an "SDP IDs" General
Extension (RFC 4567 §4.1.4, §7). Its CS ID map (RFC 3830 §6.1.1) has two crypto
sessions: CS 1 is the caller's SSRC, CS 2 the SSRC the caller assigns to the callee's
stream (one crypto session per SSRC per direction; the callee must send with it).
:meth:`Offerer.receive_answer` checks the answer (RFC 3264 §6) and the MIKEY response
in it (R_MESSAGE / DH response); any failure raises :class:`NegotiationError` whose
``error_message`` (when not None) is the MIKEY error to send in the BYE: a 2xx answer
has been ACKed already, so the call ends by BYE, never half-secure (thesis §11.4).

**Answerer** (the callee): :meth:`Answerer.receive_offer` runs the Responder on every
MIKEY message of the offer -- session level and media level -- and any one failing
rejects them all (RFC 4567 §4.1.2, thesis §11.4): :class:`NegotiationError` with 488,
the MIKEY error type and the error message to carry in the 488 (RFC 4567 §4.1.2). The
MIKEY identities are bound to SIP: the Responder is told the caller's From identity
(:mod:`mobilityd.call.identity`). It is split in two so that a UA can answer 180 in
between: :meth:`Answerer.screen_offer` (SDP and policy, no cryptography) and
:meth:`Answerer.complete_offer` (the MIKEY Responder). Policy (thesis §11.3, our choice
of codes):

* ``required`` and no usable ``RTP/SAVP`` stream with MIKEY: **606** Not Acceptable
  (RFC 3261 §21.6.4: the user, on every device, accepts no unprotected media);
* ``off`` and only secure streams: **488** Not Acceptable Here (RFC 3264 §6);
* ``preferred``: secure when offered, else the plain stream.

:meth:`Answerer.build_answer` then puts the MIKEY response(s) at the level of the
offer's message(s) (the thesis's choice: the response rides in the 200 OK).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from mobilityd.call import sdpmedia as sm
from mobilityd.call.errors import NegotiationError
from mobilityd.call.keying import Initiator, KeyingConfig, new_initiator, new_responder
from mobilityd.call.sdpmedia import KeyMgmtLevel, MediaPort
from mobilityd.media.errors import SrtpConfigError
from mobilityd.media.keying import suite_for_policy
from mobilityd.media.srtp import SrtpSuite
from mobilityd.mikey.constants import ErrorType
from mobilityd.mikey.context import CryptoContext
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import SrtpCsEntry
from mobilityd.mikey.sdp import check_sdp_ids, decode_key_mgmt, encode_key_mgmt, sdp_ids_extension
from mobilityd.mikey.session import (
    PeerReportedError,
    Rng,
    build_error_message,
    error_response,
)
from mobilityd.sip.errors import SipError, StatusCode
from mobilityd.sip.sdp import Attribute, Media, SessionDescription, build_answer, check_answer

__all__ = [
    "AnswerPlan",
    "Answerer",
    "CallSecurity",
    "NegotiatedMedia",
    "Offerer",
    "ScreenedOffer",
]

Address = tuple[str, int]
_PAYLOAD_TYPES = (0, 8)  # the G.711 formats we implement (RFC 3551 §6), default order


class CallSecurity(enum.StrEnum):
    """An account's security policy for calls (thesis §11.3)."""

    REQUIRED = "required"
    PREFERRED = "preferred"
    OFF = "off"


@dataclass(frozen=True)
class NegotiatedMedia:
    """The outcome of offer/answer for our one audio stream."""

    secure: bool
    context: CryptoContext | None = field(repr=False)
    media_index: int
    payload_type: int
    remote_rtp: Address
    remote_rtcp: Address
    rtcp_mux: bool
    local_ssrc: int
    remote_ssrc: int | None
    suite: SrtpSuite | None
    #: the packet time we send at (ms): the peer's ``a=ptime`` if usable, else ours
    ptime_ms: int = sm.PTIME_MS


@dataclass(frozen=True)
class ScreenedOffer:
    """An offer that passed :meth:`Answerer.screen_offer`: the stream to answer
    (``index``) and whether it is the secure one (its MIKEY not yet verified)."""

    offer: SessionDescription
    index: int
    secure: bool


@dataclass(frozen=True)
class AnswerPlan:
    """What :meth:`Answerer.receive_offer` decided; :meth:`Answerer.build_answer` writes it."""

    offer: SessionDescription
    media: NegotiatedMedia
    session_reply: bytes | None = field(default=None, repr=False)
    media_reply: bytes | None = field(default=None, repr=False)


def _parse(body: bytes) -> SessionDescription:
    try:
        return SessionDescription.parse(body)
    except SipError as exc:  # SdpError: its status is the answer (400/488)
        raise NegotiationError(exc.reason, exc.status) from exc


def _first_offered(media: Media, ours: Sequence[int]) -> int | None:
    """The first of ``ours`` (our preference order) among the stream's formats
    (RFC 3264 §6.1: the answerer chooses among what was offered)."""
    offered = {int(fmt) for fmt in media.fmts if fmt.isdigit()}
    return next((pt for pt in ours if pt in offered), None)


def _first_answered(media: Media, offered: Sequence[int]) -> int | None:
    """The answer's most preferred format that we offered (RFC 3264 §5.1, §6.1)."""
    for fmt in media.fmts:
        if fmt.isdigit() and int(fmt) in offered:
            return int(fmt)
    return None


def _send_ptime(media: Media, own_ms: int) -> int:
    """What we send at: the peer's ``a=ptime`` (RFC 8866 §6.4) if usable, else ours."""
    theirs = sm.ptime_of(media)
    return theirs if theirs is not None else own_ms


def _check_media_options(payload_types: Sequence[int], ptime_ms: int) -> None:
    if not payload_types or any(pt not in sm.G711_NAMES for pt in payload_types):
        raise ValueError(f"payload types {list(payload_types)}: only G.711 "
                         f"{sorted(sm.G711_NAMES)} are implemented (RFC 3551 §6)")
    if ptime_ms not in sm.PTIME_RANGE_MS:
        raise ValueError(f"ptime {ptime_ms} ms is not within 10..120")


def _usable_audio(media: Media, ours: Sequence[int]) -> bool:
    return (media.media == "audio" and not media.is_rejected
            and media.proto.upper() in (sm.SECURE_PROTO, sm.PLAIN_PROTO)
            and _first_offered(media, ours) is not None)


def _remote(sd: SessionDescription, index: int, rtcp_mux: bool) -> tuple[Address, Address]:
    """RTP and RTCP destination of stream ``index`` (RFC 8866 §5.7, RFC 3605, RFC 5761)."""
    conn = sd.connection_of(index)
    media = sd.media[index]
    if conn is None:
        raise NegotiationError(f"m= line {index} has no connection address")
    rtp = (conn.address, media.port)
    if rtcp_mux:
        return rtp, rtp
    try:
        rtcp_attr = media.rtcp
    except SipError as exc:
        raise NegotiationError(exc.reason, exc.status) from exc
    if rtcp_attr is None:
        return rtp, (conn.address, media.port + 1)
    address = rtcp_attr.connection.address if rtcp_attr.connection else conn.address
    return rtp, (address, rtcp_attr.port)


def _suite(context: CryptoContext, cs_id: int) -> SrtpSuite:
    try:
        return suite_for_policy(context.policy_for(cs_id))
    except SrtpConfigError as exc:
        raise NegotiationError(str(exc), mikey_error=ErrorType.INVALID_SPPAR) from exc


def _csb_id(message: bytes) -> int:
    """The CSB ID of a MIKEY message we have just built: octets 4-7 of the Common
    Header (RFC 3830 §6.1: version, data type, next payload, V/PRF func, CSB ID), read
    without parsing the message again."""
    return int.from_bytes(message[4:8], "big")


def _ssrc(rng: Rng, avoid: int | None = None) -> int:
    while True:
        value = int.from_bytes(rng(4), "big")
        if value and value != avoid:
            return value


@dataclass
class Offerer:
    """The caller's side of offer/answer (module docstring)."""

    local_id: bytes
    peer_id: bytes
    security: CallSecurity
    keying: KeyingConfig | None = None
    level: KeyMgmtLevel = KeyMgmtLevel.SESSION
    rtcp_mux: bool = True
    #: G.711 payload types to offer, most preferred first (module docstring)
    payload_types: tuple[int, ...] = _PAYLOAD_TYPES
    #: our ``a=ptime`` (RFC 8866 §6.4)
    ptime_ms: int = sm.PTIME_MS
    offer: SessionDescription | None = field(default=None, init=False)
    initiator: Initiator | None = field(default=None, init=False, repr=False)
    local_ssrc: int = field(default=0, init=False)
    assigned_ssrc: int = field(default=0, init=False)
    csb_id: int = field(default=0, init=False)

    def streams(self) -> tuple[bool, ...]:
        """One entry per m= line to offer: True for SRTP, False for plain RTP."""
        return {CallSecurity.REQUIRED: (True,), CallSecurity.PREFERRED: (True, False),
                CallSecurity.OFF: (False,)}[self.security]

    def make_offer(self, ports: Sequence[MediaPort], now: float, rng: Rng) -> bytes:
        """The SDP offer; ``ports`` are the local addresses of :meth:`streams`, in order."""
        kinds = self.streams()
        _check_media_options(self.payload_types, self.ptime_ms)
        if len(ports) != len(kinds):
            raise ValueError(f"need {len(kinds)} media ports, got {len(ports)}")
        self.local_ssrc = _ssrc(rng)
        self.assigned_ssrc = _ssrc(rng, self.local_ssrc)
        key_mgmt = None
        if True in kinds:
            if self.keying is None:
                raise ValueError("a secure offer needs a KeyingConfig")
            cs_map = (SrtpCsEntry(0, self.local_ssrc, 0), SrtpCsEntry(0, self.assigned_ssrc, 0))
            self.initiator = new_initiator(
                self.keying, local_id=self.local_id, peer_id=self.peer_id, cs_map=cs_map,
                extensions=(sdp_ids_extension([sm.MIKEY]),),
            )
            i_message = self.initiator.start(now, rng)
            self.csb_id = _csb_id(i_message)
            key_mgmt = encode_key_mgmt(i_message)
        media = [
            sm.audio_media(
                sm.SECURE_PROTO if secure else sm.PLAIN_PROTO, port, self.payload_types,
                ssrc=self.local_ssrc, rtcp_mux=self.rtcp_mux,
                key_mgmt=key_mgmt if secure and self.level is KeyMgmtLevel.MEDIA else None,
                ptime_ms=self.ptime_ms,
            )
            for secure, port in zip(kinds, ports, strict=True)
        ]
        session_attrs = []
        if key_mgmt is not None and self.level is KeyMgmtLevel.SESSION:
            session_attrs.append(Attribute("key-mgmt", key_mgmt))
        session_id = int.from_bytes(rng(4), "big") & 0x7FFFFFFF
        self.offer = sm.session(session_id, ports[0].ip, media, session_attrs)
        return bytes(self.offer)

    def _error(self, reason: str, error: MikeyError, now: float) -> NegotiationError:
        message = None
        if not isinstance(error, PeerReportedError):  # never answer an error with one
            message = build_error_message(self.csb_id, [error.error_type], now=now)
        return NegotiationError(f"{reason}: {error}", mikey_error=error.error_type,
                                error_message=message)

    def receive_answer(self, body: bytes, now: float) -> NegotiatedMedia:
        """Check the answer and the MIKEY response in it (module docstring)."""
        offer = self.offer
        if offer is None:
            raise ValueError("receive_answer() before make_offer()")
        if not body:
            raise NegotiationError("answer without SDP")
        answer = _parse(body)
        try:
            check_answer(offer, answer)
        except SipError as exc:
            raise NegotiationError(exc.reason, exc.status) from exc
        accepted = [i for i, m in enumerate(answer.media) if not m.is_rejected]
        kinds = self.streams()
        secure_accepted = [i for i in accepted if kinds[i]]
        index = secure_accepted[0] if secure_accepted else (accepted[0] if accepted else None)
        if index is None:
            raise NegotiationError("the answer refuses every stream")
        media = answer.media[index]
        payload_type = _first_answered(media, self.payload_types)
        if payload_type is None:
            names = "/".join(sm.G711_NAMES[pt] for pt in self.payload_types)
            raise NegotiationError(f"answer m= line {index} has none of the offered "
                                   f"formats ({names})")
        rtcp_mux = self.rtcp_mux and media.rtcp_mux
        remote_rtp, remote_rtcp = _remote(answer, index, rtcp_mux)
        ptime_ms = _send_ptime(media, self.ptime_ms)
        if not kinds[index]:
            return NegotiatedMedia(False, None, index, payload_type, remote_rtp, remote_rtcp,
                                   rtcp_mux, self.local_ssrc, sm.ssrc_of(media), None,
                                   ptime_ms)
        context = self._key_agreement(answer, index, now)
        return NegotiatedMedia(True, context, index, payload_type, remote_rtp, remote_rtcp,
                               rtcp_mux, self.local_ssrc, self.assigned_ssrc,
                               _suite(context, 1), ptime_ms)

    def _key_agreement(self, answer: SessionDescription, index: int, now: float) -> CryptoContext:
        initiator = self.initiator
        assert initiator is not None
        values = sm.mikey_values(answer.media[index].attributes) or sm.mikey_values(
            answer.attributes)
        if not values:
            if initiator.context is not None:  # no answer due (no V flag, RFC 3830 §3.1)
                return initiator.context
            raise NegotiationError(  # thesis §11.3: a UA that ignored key-mgmt
                "the answer accepts RTP/SAVP without a MIKEY response",
                mikey_error=ErrorType.UNSPECIFIED,
                error_message=build_error_message(self.csb_id, [ErrorType.UNSPECIFIED],
                                                  now=now),
            )
        if len(values) > 1:
            raise NegotiationError("the answer carries several MIKEY responses")
        try:
            return initiator.receive_response(decode_key_mgmt(values[0]), now)
        except MikeyError as exc:
            raise self._error("MIKEY response refused", exc, now) from exc


@dataclass
class Answerer:
    """The callee's side of offer/answer (module docstring)."""

    local_id: bytes
    security: CallSecurity
    keying: KeyingConfig | None = None
    #: G.711 payload types we accept, most preferred first (module docstring)
    payload_types: tuple[int, ...] = _PAYLOAD_TYPES
    #: our ``a=ptime`` in answers (RFC 8866 §6.4)
    ptime_ms: int = sm.PTIME_MS

    def __post_init__(self) -> None:
        _check_media_options(self.payload_types, self.ptime_ms)

    def receive_offer(self, body: bytes, caller_id: bytes, now: float, rng: Rng) -> AnswerPlan:
        """Decide on an offer; raises :class:`NegotiationError` with the SIP answer.

        The same as :meth:`screen_offer` then :meth:`complete_offer`."""
        return self.complete_offer(self.screen_offer(body), caller_id, now, rng)

    def screen_offer(self, body: bytes) -> ScreenedOffer:
        """The cheap part of the decision, no cryptography: the SDP parses (RFC 8866),
        every ``a=key-mgmt`` is well formed (RFC 4567 §3.1) and the policy can be met
        (thesis §11.3: 606 / 488 as in the module docstring). An offer that passes may
        still be refused by :meth:`complete_offer` (MIKEY, RFC 4567 §4.1.2)."""
        if not body:
            raise NegotiationError("INVITE without an SDP offer")
        offer = _parse(body)
        try:
            offer.key_mgmt  # noqa: B018 - validates every key-mgmt attribute (RFC 4567 §3.1)
            for m in offer.media:
                m.key_mgmt  # noqa: B018
        except SipError as exc:
            raise NegotiationError(exc.reason, exc.status) from exc
        usable = [i for i, m in enumerate(offer.media) if _usable_audio(m, self.payload_types)]
        secure = [i for i in usable if offer.media[i].is_srtp
                  and sm.mikey_values(offer.media[i].attributes or []) + sm.mikey_values(
                      offer.attributes)]
        plain = [i for i in usable if not offer.media[i].is_srtp]
        if self.security is not CallSecurity.OFF and secure:
            return ScreenedOffer(offer, secure[0], True)
        if self.security is CallSecurity.REQUIRED:
            raise NegotiationError("secure media (RTP/SAVP with MIKEY) is required",
                                   StatusCode.NOT_ACCEPTABLE_ANYWHERE)
        if not plain:
            names = "/".join(sm.G711_NAMES[pt] for pt in self.payload_types)
            raise NegotiationError(f"no acceptable plain RTP audio stream offered "
                                   f"(we take {names})")
        return ScreenedOffer(offer, plain[0], False)

    def complete_offer(self, screened: ScreenedOffer, caller_id: bytes, now: float,
                       rng: Rng) -> AnswerPlan:
        """The rest of the decision on a screened offer: for a secure stream the MIKEY
        Responder on every message of the offer (identity bound to ``caller_id``, MAC or
        signature, timestamp, replay cache, SDP IDs: RFC 3830 §5, RFC 4567 §4.1.2), any
        one failing refuses them all; :class:`NegotiationError` carries the answer."""
        offer, index = screened.offer, screened.index
        if screened.secure:
            return self._secure_plan(offer, index, caller_id, now, rng)
        media = offer.media[index]
        payload_type = _first_offered(media, self.payload_types)
        assert payload_type is not None
        remote_rtp, remote_rtcp = _remote(offer, index, media.rtcp_mux)
        return AnswerPlan(offer, NegotiatedMedia(
            False, None, index, payload_type, remote_rtp, remote_rtcp, media.rtcp_mux,
            _ssrc(rng, sm.ssrc_of(media)), sm.ssrc_of(media), None,
            _send_ptime(media, self.ptime_ms)))

    def _respond(self, data: bytes, caller_id: bytes, now: float, rng: Rng,
                 protocols: list[str]) -> tuple[CryptoContext, bytes | None]:
        """One MIKEY message: Responder (identity bound to SIP), then SDP IDs (§4.1.4)."""
        assert self.keying is not None
        responder = new_responder(self.keying, local_id=self.local_id, caller_id=caller_id)
        try:
            done = responder.receive(data, now, rng)
            check_sdp_ids(MikeyMessage.parse(data), protocols)
        except MikeyError as exc:
            raise NegotiationError(
                f"MIKEY offer refused: {exc}", mikey_error=exc.error_type,
                error_message=error_response(data, exc, now),
            ) from exc
        return done.context, done.reply

    def _secure_plan(self, offer: SessionDescription, index: int, caller_id: bytes,
                     now: float, rng: Rng) -> AnswerPlan:
        if self.keying is None:
            raise NegotiationError("no MIKEY credentials configured")
        # Every MIKEY message of the offer must verify, or none is used (§4.1.2).
        messages: list[tuple[int | None, bytes, list[str]]] = []
        for level, attrs in [(None, offer.attributes),
                             *((i, m.attributes) for i, m in enumerate(offer.media)
                               if not m.is_rejected)]:
            for value in sm.mikey_values(attrs):
                try:
                    messages.append((level, decode_key_mgmt(value), sm.key_mgmt_ids(attrs)))
                except MikeyError as exc:
                    raise NegotiationError(f"bad key-mgmt attribute: {exc}",
                                           mikey_error=exc.error_type) from exc
        results = {level: self._respond(data, caller_id, now, rng, ids)
                   for level, data, ids in messages}
        chosen = results.get(index) or results[None]
        context = chosen[0]
        if len(context.cs_map) < 2:
            raise NegotiationError(
                "the CS ID map assigns no SSRC to our stream", mikey_error=ErrorType.UNSPECIFIED,
                error_message=build_error_message(context.csb_id, [ErrorType.UNSPECIFIED],
                                                  now=now))
        media = offer.media[index]
        payload_type = _first_offered(media, self.payload_types)
        assert payload_type is not None
        remote_rtp, remote_rtcp = _remote(offer, index, media.rtcp_mux)
        negotiated = NegotiatedMedia(
            True, context, index, payload_type, remote_rtp, remote_rtcp, media.rtcp_mux,
            context.cs_map[1].ssrc, context.cs_map[0].ssrc, _suite(context, 2),
            _send_ptime(media, self.ptime_ms))
        session_reply = results[None][1] if None in results else None
        media_reply = results[index][1] if index in results else None
        return AnswerPlan(offer, negotiated, session_reply, media_reply)

    def build_answer(self, plan: AnswerPlan, port: MediaPort, session_id: int) -> bytes:
        """The SDP answer for ``plan`` with our stream at ``port`` (RFC 3264 §6)."""
        chosen = plan.media

        def accept(index: int, offered: Media) -> Media | None:
            if index != chosen.media_index:
                return None
            key_mgmt = encode_key_mgmt(plan.media_reply) if plan.media_reply else None
            return sm.audio_media(offered.proto, port, (chosen.payload_type,),
                                  ssrc=chosen.local_ssrc, rtcp_mux=chosen.rtcp_mux,
                                  key_mgmt=key_mgmt, ptime_ms=self.ptime_ms)

        attributes = []
        if plan.session_reply is not None:
            attributes.append(Attribute("key-mgmt", encode_key_mgmt(plan.session_reply)))
        answer = build_answer(plan.offer, sm.origin(session_id, 0, port.ip), accept,
                              connection=sm.connection(port.ip), attributes=attributes)
        return bytes(answer)
