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
"""
