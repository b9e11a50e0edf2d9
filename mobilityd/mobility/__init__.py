"""mobilityd.mobility: deciding and validating call moves.

Sans-I/O engines (fed events and ``now``, tested by events alone):

* :mod:`~mobilityd.mobility.decision` -- ``CallPath``, ``CallRoutes``, ``judge()``.
* :mod:`~mobilityd.mobility.coalesce` -- ``MoveCoalescer``: which calls move and when
  (the first real change at once, optional moves held back by a hold-down).
* :mod:`~mobilityd.mobility.grace` -- ``GracePeriods``: no path for up to 30 s.
* :mod:`~mobilityd.mobility.events` -- their inputs and outputs.

Adapters: :mod:`~mobilityd.mobility.pathmonitor` (``PathMonitor``, asyncio: watcher +
route lookups + engines) and :mod:`~mobilityd.mobility.perf` (``measure_move_decision``).

Moving a call (issue 5):

* :mod:`~mobilityd.mobility.move` (sans-I/O) -- ``move_offer()``: the re-INVITE offer of
  a move (``o=`` version + 1, new ``c=``/ports, RFC 3830 §4.5 update in ``key-mgmt``);
  ``relocated_sdp()``, ``MediaAddress``.
* :mod:`~mobilityd.mobility.peer` (sans-I/O) -- ``verify_move()``: verify before anything
  changes, or ``MoveRefused`` (488 + Warning + MIKEY error message); ``refusal_body()``.
  Where media is then sent changes only through the return-routability gate of the
  media layer (:mod:`mobilityd.media.routability`, issue 5 step 4).
* :mod:`~mobilityd.mobility.roaming` (asyncio) -- ``RoamingCall``, ``CallMover`` (rebind
  media, then SIP, then re-INVITE), ``MoveGuard`` (peer side), ``Roamer`` (drives movers
  from ``PathMonitor`` decisions; BYE when a grace period expires).
* :mod:`~mobilityd.mobility.agent_roaming` (asyncio) -- the same for a ``CallAgent``:
  ``VerifyingReinvitePolicy``, ``move_agent_call()``, ``MoveContexts``.
"""
