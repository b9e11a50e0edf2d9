"""SRTP sessions keyed from a MIKEY crypto session bundle (RFC 3830 §4.1.3, §6.1.1,
§6.10.1).

Each crypto session of the CS ID map is one SSRC with its own master key and salt
(``CryptoContext.srtp_master(cs_id)``), its ROC and a security policy (SP payload).
:func:`sessions_for_call` builds our two :class:`SrtpSession` objects: outbound with a
stream per local SSRC, inbound with a stream per remote SSRC, each at the ROC the map
carries (through the ROC shim), so a receiver joining a running stream decrypts from
its first packet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from mobilityd.media.errors import SrtpConfigError
from mobilityd.media.srtp import (
    MASTER_KEY_LEN,
    MASTER_SALT_LEN,
    Direction,
    SrtpKeys,
    SrtpSession,
    SrtpSuite,
)
from mobilityd.mikey.constants import SrtpParam

_AES_CM = 1  # RFC 3830 §6.10.1 Table 6.10.1.b
_HMAC_SHA1 = 1  # RFC 3830 §6.10.1 Table 6.10.1.c
_ON = 1

#: The SP parameters (RFC 3830 §6.10.1) we support, each with the only value we take.
_SUPPORTED_POLICY = (
    (SrtpParam.ENCR_ALG, _AES_CM),
    (SrtpParam.AUTH_ALG, _HMAC_SHA1),
    (SrtpParam.SESSION_ENCR_KEY_LEN, MASTER_KEY_LEN),
    (SrtpParam.SESSION_SALT_KEY_LEN, MASTER_SALT_LEN),
    (SrtpParam.SRTP_ENCRYPTION, _ON),
    (SrtpParam.SRTCP_ENCRYPTION, _ON),
    (SrtpParam.SRTP_AUTHENTICATION, _ON),
    (SrtpParam.KEY_DERIVATION_RATE, 0),
    (SrtpParam.SRTP_PREFIX_LEN, 0),
)


class PolicyLike(Protocol):
    def get_int(self, param_type: SrtpParam) -> int | None: ...


class CsEntryLike(Protocol):
    @property
    def ssrc(self) -> int: ...

    @property
    def roc(self) -> int: ...


class CryptoContextLike(Protocol):
    """What we use of ``mobilityd.mikey.context.CryptoContext``."""

    @property
    def cs_map(self) -> Sequence[CsEntryLike]: ...

    def srtp_master(self, cs_id: int) -> tuple[bytes, bytes]: ...

    def policy_for(self, cs_id: int) -> PolicyLike | None: ...


def suite_for_policy(policy: PolicyLike | None) -> SrtpSuite:
    """The suite a MIKEY SP payload asks for (RFC 3830 §6.10.1; absent = SRTP default).

    Only AES-CM-128 + HMAC-SHA1 with encryption and authentication on are supported;
    anything else is a :class:`SrtpConfigError` (the call layer answers with a MIKEY
    error, never runs a weaker stream).
    """
    if policy is None:
        return SrtpSuite.AES_CM_128_HMAC_SHA1_80
    for param, wanted in _SUPPORTED_POLICY:
        value = policy.get_int(param)
        if value is not None and value != wanted:
            raise SrtpConfigError(f"unsupported SRTP policy: {param.name}={value}")
    tag = policy.get_int(SrtpParam.AUTH_TAG_LEN)
    return SrtpSuite.AES_CM_128_HMAC_SHA1_80 if tag is None else (
        SrtpSuite.for_auth_tag_length(tag)
    )


def keys_for_crypto_session(context: CryptoContextLike, cs_id: int) -> SrtpKeys:
    """Master key, salt and suite of crypto session ``cs_id`` (1-based)."""
    return _CallKeys(context).keys(cs_id)


class _CallKeys:
    """The keys of one call's crypto sessions, each derived at most once.

    Deriving a crypto session's master key and salt runs the MIKEY PRF
    (RFC 3830 §4.1.3, §4.1.2: HMAC-SHA1 over every 256-bit block of the TGK, so a
    DH TGK costs several times a PSK one) and reading its SP payload scans every
    parameter (§6.10); a call needs each at most once. The suite is kept per SP
    payload object: crypto sessions sharing a policy number share the payload.
    """

    def __init__(self, context: CryptoContextLike) -> None:
        self._context = context
        self._keys: dict[int, SrtpKeys] = {}
        self._suites: list[tuple[PolicyLike | None, SrtpSuite]] = []

    def keys(self, cs_id: int) -> SrtpKeys:
        keys = self._keys.get(cs_id)
        if keys is None:
            if not 1 <= cs_id <= len(self._context.cs_map):
                raise SrtpConfigError(f"no crypto session {cs_id} in the CS ID map")
            suite = self._suite(self._context.policy_for(cs_id))
            keys = self._keys[cs_id] = SrtpKeys.from_master(
                self._context.srtp_master(cs_id), suite
            )
        return keys

    def _suite(self, policy: PolicyLike | None) -> SrtpSuite:
        for known, suite in self._suites:
            if known is policy:
                return suite
        suite = suite_for_policy(policy)
        self._suites.append((policy, suite))
        return suite


def _cs_ids(context: CryptoContextLike, ssrcs: Iterable[int]) -> list[int]:
    by_ssrc = {entry.ssrc: index for index, entry in enumerate(context.cs_map, start=1)}
    ids = []
    for ssrc in ssrcs:
        if ssrc not in by_ssrc:
            raise SrtpConfigError(f"SSRC {ssrc:#010x} is not in the MIKEY CS ID map")
        ids.append(by_ssrc[ssrc])
    return ids


def session_for(
    context: CryptoContextLike, direction: Direction, ssrcs: Iterable[int],
    *, keep_index_history: bool = False,
) -> SrtpSession:
    """One direction's session: a stream per SSRC with its crypto session's keys and ROC."""
    return _session_for(_CallKeys(context), context, direction, ssrcs, keep_index_history)


def _session_for(
    call_keys: _CallKeys, context: CryptoContextLike, direction: Direction,
    ssrcs: Iterable[int], keep_index_history: bool,
) -> SrtpSession:
    cs_ids = _cs_ids(context, ssrcs)
    if not cs_ids:
        raise SrtpConfigError(f"no SSRC given for the {direction.value} SRTP session")
    session = SrtpSession(
        call_keys.keys(cs_ids[0]), direction, keep_index_history=keep_index_history
    )
    for cs_id in cs_ids:
        entry = context.cs_map[cs_id - 1]
        session.add_stream(entry.ssrc, keys=call_keys.keys(cs_id))
        if entry.roc:
            session.set_roc(entry.ssrc, entry.roc)
    return session


def sessions_for_call(
    context: CryptoContextLike, local_ssrcs: Iterable[int], remote_ssrcs: Iterable[int],
    *, keep_index_history: bool = False,
) -> tuple[SrtpSession, SrtpSession]:
    """(outbound, inbound) sessions for a call keyed by ``context``: every crypto
    session's keys derived once (RFC 3830 §4.1.3) and its SP payload read once."""
    call_keys = _CallKeys(context)
    return (
        _session_for(call_keys, context, Direction.OUTBOUND, local_ssrcs, keep_index_history),
        _session_for(call_keys, context, Direction.INBOUND, remote_ssrcs, keep_index_history),
    )
