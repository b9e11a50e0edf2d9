"""A call's SRTP sessions derive each crypto session's keys once (RFC 3830 §4.1.3)
and read each SP payload once (§6.10.1), with the same keys and the same SRTP/SRTCP
output as before that work was shared (RFC 3711 §3.3, §3.4)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

from mobilityd.media.keying import (
    CsEntryLike,
    PolicyLike,
    keys_for_crypto_session,
    session_for,
    sessions_for_call,
)
from mobilityd.media.rtp import build_rtp
from mobilityd.media.srtp import Direction, SrtpSession
from mobilityd.mikey.constants import SrtpParam
from mobilityd.mikey.context import CryptoContext
from tests.media.test_keying import A_SSRC, B_SSRC, exchange

# Recorded from sessions_for_call before keys were shared between its two sessions
# (commit 95cf100's keying.py): five RTP packets each way, SHA-256 of the SRTP output,
# and one SRTCP sender report from Alice.
GOLDEN_SRTP_SHA256 = "5efe7e283128fe4a1cbd339eca58896941955743a907c174439c36b634b75a3b"
GOLDEN_SRTCP = ("80c80006000a11ce23d6a5483c66ac90f4ba246c82884fd16055642280000001"
                "351231ec3780556f4a7f")
SENDER_REPORT = bytes.fromhex("80c80006") + A_SSRC.to_bytes(4, "big") + bytes(20)


class CountingPolicy:
    def __init__(self, policy: PolicyLike | None, reads: Counter[str]) -> None:
        self._policy = policy
        self._reads = reads

    def get_int(self, param_type: SrtpParam) -> int | None:
        self._reads["get_int"] += 1
        return None if self._policy is None else self._policy.get_int(param_type)


class CountingContext:
    """The real CryptoContext, counting what keying asks of it."""

    def __init__(self, context: CryptoContext) -> None:
        self._context = context
        self.calls: Counter[str] = Counter()
        self._policy = CountingPolicy(context.policy_for(1), self.calls)

    @property
    def cs_map(self) -> Sequence[CsEntryLike]:
        return self._context.cs_map

    def srtp_master(self, cs_id: int) -> tuple[bytes, bytes]:
        self.calls[f"srtp_master:{cs_id}"] += 1
        return self._context.srtp_master(cs_id)

    def policy_for(self, cs_id: int) -> PolicyLike | None:
        self.calls[f"policy_for:{cs_id}"] += 1
        return self._policy  # one SP payload for both crypto sessions, as in exchange()


def _protect_both_ways(a_out: SrtpSession, b_out: SrtpSession) -> str:
    digest = hashlib.sha256()
    for seq in range(5):
        digest.update(a_out.protect(build_rtp(0, seq, seq * 160, A_SSRC, bytes([seq]) * 160)))
        digest.update(b_out.protect(build_rtp(8, seq, seq * 160, B_SSRC, bytes([seq]) * 160)))
    return digest.hexdigest()


def test_same_srtp_and_srtcp_output_as_recorded() -> None:
    ctx_alice, ctx_bob = exchange()
    a_out, a_in = sessions_for_call(ctx_alice, [A_SSRC], [B_SSRC])
    b_out, b_in = sessions_for_call(ctx_bob, [B_SSRC], [A_SSRC])
    assert _protect_both_ways(a_out, b_out) == GOLDEN_SRTP_SHA256
    assert a_out.protect_rtcp(SENDER_REPORT).hex() == GOLDEN_SRTCP
    packet = build_rtp(0, 5, 800, A_SSRC, b"\x05" * 160)
    assert b_in.unprotect(a_out.protect(packet)) == packet
    reply = build_rtp(8, 5, 800, B_SSRC, b"\x05" * 160)
    assert a_in.unprotect(b_out.protect(reply)) == reply


def test_each_crypto_session_derived_once_per_call() -> None:
    ctx_alice, _ = exchange()
    counting = CountingContext(ctx_alice)
    outbound, inbound = sessions_for_call(counting, [A_SSRC], [B_SSRC])
    assert counting.calls["srtp_master:1"] == 1
    assert counting.calls["srtp_master:2"] == 1
    # the shared SP payload is checked once: one pass over its parameters
    assert counting.calls["get_int"] == 10
    assert outbound.keys == keys_for_crypto_session(ctx_alice, 1)
    assert inbound.keys == keys_for_crypto_session(ctx_alice, 2)


def test_one_direction_alone_matches_the_call_pair() -> None:
    ctx_alice, ctx_bob = exchange()
    a_out = session_for(ctx_alice, Direction.OUTBOUND, [A_SSRC])
    b_out = session_for(ctx_bob, Direction.OUTBOUND, [B_SSRC])
    assert _protect_both_ways(a_out, b_out) == GOLDEN_SRTP_SHA256
    assert a_out.get_roc(A_SSRC) == 3  # the CS ID map's ROC (RFC 3830 §6.1.1)
