"""How a long-running mobilityd process settles its heap once it is up.

Once start-up is over, everything alive (modules, tables, agents, the call registry)
lives as long as the process: ``gc.collect()`` then ``gc.freeze()`` moves it out of the
collector's reach, so a full (generation 2) pass costs microseconds instead of stalling
the loop 45-95 ms in the middle of a call transfer or a roaming move (issue 6 timeline,
docs/transfer.md).

The generation-0 threshold is raised from CPython's 700 allocations to
:data:`GENERATION0_THRESHOLD`: a SIP transaction stays alive for Timer J/L after its
call (32 s over UDP, RFC 3261 §17.2.2), so under load the young generation holds
thousands of live objects that every collection walks again; measured with
``python -m mobilityd.sip.perf_ua`` (``bench_endpoint_calls``, 20,000 calls) the
collector's share of a UAS call fell from 13-15 µs to 4-6 µs. Reference cycles are
still collected, only in larger batches; the daemon's own objects are few and
long-lived.

Used by the daemon (:mod:`mobilityd.service.daemon`) and by the benchmark processes
that stand for it (``mobilityd.bench sip``, the roaming and transfer parties), so that
a benchmark measures what the daemon runs.
"""

from __future__ import annotations

import gc

GENERATION0_THRESHOLD = 10_000
OLDER_GENERATION_THRESHOLDS = (20, 20)


def settle_heap() -> None:
    """Collect, freeze what is alive, raise the collection thresholds (module doc)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GENERATION0_THRESHOLD, *OLDER_GENERATION_THRESHOLDS)
