"""mobilityd.mobility: deciding and validating call moves.

Sans-I/O engines (fed events and ``now``, tested by events alone):

* :mod:`~mobilityd.mobility.decision` -- ``CallPath``, ``CallRoutes``, ``judge()``.
* :mod:`~mobilityd.mobility.coalesce` -- ``MoveCoalescer``: which calls move and when
  (the first real change at once, optional moves held back by a hold-down).
* :mod:`~mobilityd.mobility.grace` -- ``GracePeriods``: no path for up to 30 s.
* :mod:`~mobilityd.mobility.pathcheck` -- ``MediaPathCheck``: the peer switches its
  media destination only on a verified MIKEY update plus authenticated media.
* :mod:`~mobilityd.mobility.events` -- their inputs and outputs.

Adapters: :mod:`~mobilityd.mobility.pathmonitor` (``PathMonitor``, asyncio: watcher +
route lookups + engines) and :mod:`~mobilityd.mobility.perf` (``measure_move_decision``).
"""
