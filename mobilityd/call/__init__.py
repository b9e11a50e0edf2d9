"""Secure calls end to end: SDP offer/answer with MIKEY, SRTP media, the call agent.

Public API:

* :mod:`mobilityd.call.negotiation` (sans-I/O): :class:`Offerer`, :class:`Answerer`,
  :class:`CallSecurity` (required / preferred / off), :class:`NegotiatedMedia`.
* :mod:`mobilityd.call.keying`: :class:`KeyingConfig`, :class:`PeerKeying`,
  :class:`KeyMethod` (PSK / PKE / DH-SIGN per peer), precomputed DH pool.
* :mod:`mobilityd.call.identity`: :func:`sip_identity` (MIKEY ID <-> SIP identity).
* :mod:`mobilityd.call.agent` (asyncio): :class:`CallAgent`, :class:`AgentConfig`, the
  re-INVITE / REFER policy hooks.
* :mod:`mobilityd.call.secure_call`: :class:`SecureCall` (per-call state: dialog id,
  CryptoContext, MediaEndpoint, sender, sinks, counters).
* :mod:`mobilityd.call.manager`: the daemon's ``CallManager`` on top of the agent.
* :mod:`mobilityd.call.events`, :mod:`mobilityd.call.errors`.

Choices where the RFCs or the thesis leave room (each has a test in tests/call/):

1. ``a=key-mgmt:mikey`` goes at session level by default (tshark decodes it only there),
   media level on request (``KeyMgmtLevel.MEDIA``); the answer puts each MIKEY response
   at the level of the offer's message (RFC 4567 §3.1).
2. The I_MESSAGE carries the "SDP IDs" General Extension (RFC 4567 §4.1.4, §7) listing
   the key-mgmt protocol ids of its own SDP level; a missing or different list is
   ``AUTH_FAILURE`` (bidding-down).
3. CS ID map: CS 1 = the caller's SSRC, CS 2 = the SSRC the caller assigns to the
   callee's stream (one crypto session per SSRC per direction); ROC 0 for new calls.
4. Policy ``required`` vs. an offer without MIKEY: **606** (thesis §11.3, RFC 3261
   §21.6.4: no device of this user accepts plain media); ``off`` vs. an SRTP-only
   offer: **488** (RFC 3264 §6); MIKEY failure in an offer: **488** with a
   ``Warning: 399`` and an ``application/sdp`` body without media whose session-level
   ``a=key-mgmt:mikey`` carries the MIKEY error message (RFC 4567 §4.1.2). The same body
   type carries the error in a BYE.
5. An error found in the 2xx answer (bad V / signature / certificate, SRTP accepted
   without MIKEY): the UA has ACKed, so the call ends with a BYE carrying the MIKEY
   error (thesis §11.4 sends CANCEL; after a 2xx a CANCEL has no effect, RFC 3261 §9.1).
   A peer's own error message is never answered with one (RFC 3830 §5.1.2).
6. Every MIKEY message of an offer (session and media level) must verify, or the offer
   is refused (RFC 4567 §4.1.2, thesis §11.4).
7. MIKEY identity = ``scheme:user@host`` of the SIP From (caller) / To (callee), host
   lower-case (:func:`mobilityd.call.identity.sip_identity`); certificates must carry it
   as SAN URI.
8. An INVITE without an offer (offer in the 200, RFC 3261 §13.2.1) is refused with 488.
9. The callee answers 180 Ringing once the offer passed the checks that need no
   cryptography (SDP, policy: ``Answerer.screen_offer``) and runs the MIKEY Responder
   afterwards, while it rings (``Answerer.complete_offer``): the MIKEY response is due
   only in the 200 OK, so key agreement is off the calling delay (thesis App. B
   Definition 1). The user is alerted (``IncomingCallOffered``) only for an offer whose
   every MIKEY message verified; a failing one gets its 488 + MIKEY error after the 180.
10. With ``AgentConfig.outbound_proxy`` (the registrar), a re-INVITE the peer's old
    contact never answers is re-sent once through the proxy to the peer's GRUU/AOR
    (``ReinviteRerouted``), and ``CallAgent.reinvite`` waits for both attempts
    (``reinvite_wait``: 2 x 64*T1 + T4).
"""
