"""mobilityd.media: RTP/RTCP, SRTP over pylibsrtp, audio, pacing and the call's sockets.

Modules (sans-I/O unless marked asyncio):

- :mod:`~mobilityd.media.rtp`, :mod:`~mobilityd.media.rtcp`: codecs (RFC 3550, RFC 5761)
- :mod:`~mobilityd.media.srtp`: :class:`SrtpSession` per direction (RFC 3711), counters,
  typed errors; :mod:`~mobilityd.media.roc_shim`: libsrtp's ROC get/set via ctypes;
  :mod:`~mobilityd.media.keying`: sessions from a MIKEY ``CryptoContext`` (RFC 3830)
- :mod:`~mobilityd.media.stats`, :mod:`~mobilityd.media.stream`,
  :mod:`~mobilityd.media.reports`: packet indices, reception statistics, RTCP reports
- :mod:`~mobilityd.media.g711`, :mod:`~mobilityd.media.tone`, :mod:`~mobilityd.media.wav`,
  :mod:`~mobilityd.media.sink`: G.711, tone generator/detector, WAV player/recorder
- :mod:`~mobilityd.media.routability`: the return-routability gate (issue 5 step 4)
- :mod:`~mobilityd.media.pacing` (asyncio timer): drift-free 20 ms senders
- :mod:`~mobilityd.media.endpoint`, :mod:`~mobilityd.media.udp`,
  :mod:`~mobilityd.media.rtcp_session` (asyncio): a call's sockets, rebind, RTCP;
  :mod:`~mobilityd.media.events`: the events they report
"""
