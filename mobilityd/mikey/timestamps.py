"""MIKEY timestamps (RFC 3830 §4.2.8, §6.6): NTP format from an injected ``now``.

``now`` is always Unix time in seconds (a float) handed in by the caller; nothing here
reads a clock. NTP-UTC and NTP values are 64-bit NTP timestamps (32-bit seconds since
1900-01-01, 32-bit fraction). §4.2.8 warns that the seconds overflow every ~136 years
(era 1 starts in 2036): :func:`unix_from_ntp` picks the era that puts the value closest
to the receiver's ``now``, so a peer on the other side of the 2036 roll-over still works.

COUNTER timestamps (32 bits) carry no time; sessions refuse them by default (they cannot
be checked against a clock-skew window, §5.4) unless a policy enables them.
"""

from __future__ import annotations

from mobilityd.mikey.constants import ErrorType, TsType
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.payloads import Timestamp

__all__ = [
    "NTP_UNIX_OFFSET",
    "check_freshness",
    "ntp_from_unix",
    "timestamp_payload",
    "unix_from_ntp",
]

NTP_UNIX_OFFSET = 2_208_988_800
"""Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch)."""
_ERA = 1 << 32


def ntp_from_unix(now: float) -> int:
    """The 64-bit NTP timestamp (RFC 3830 §4.2.8) of Unix time ``now`` (modulo the era)."""
    if now < -NTP_UNIX_OFFSET:
        raise ValueError("time before the NTP epoch")
    seconds = int(now // 1)
    fraction = int((now - seconds) * _ERA)
    return (((seconds + NTP_UNIX_OFFSET) % _ERA) << 32) | min(fraction, _ERA - 1)


def unix_from_ntp(value: int, now: float) -> float:
    """Unix time of NTP ``value``, choosing the 136-year era closest to ``now`` (§4.2.8)."""
    seconds = (value >> 32) + (value & (_ERA - 1)) / _ERA
    base = now + NTP_UNIX_OFFSET
    era = round((base - seconds) / _ERA)
    return seconds + era * _ERA - NTP_UNIX_OFFSET


def timestamp_payload(now: float, ts_type: TsType = TsType.NTP_UTC) -> Timestamp:
    """A T payload (RFC 3830 §6.6) for ``now``; only the NTP types have a clock value."""
    if ts_type not in (TsType.NTP_UTC, TsType.NTP):
        raise ValueError(f"{ts_type.name} timestamps are not derived from a clock")
    return Timestamp(ts_type, ntp_from_unix(now))


def check_freshness(
    ts: Timestamp, now: float, window: float, *, allow_counter: bool = False
) -> float:
    """Check ``ts`` lies within ``±window`` seconds of ``now`` (RFC 3830 §5.3, §5.4).

    Returns the timestamp as Unix time (COUNTER: its value as a float when allowed).
    Raises :class:`MikeyError` ``INVALID_TS`` when it is outside the window or is a
    COUNTER the policy does not allow.
    """
    if ts.ts_type == TsType.COUNTER:
        if not allow_counter:
            raise MikeyError("COUNTER timestamps are not accepted", ErrorType.INVALID_TS)
        return float(ts.value)
    when = unix_from_ntp(ts.value, now)
    if abs(when - now) > window:
        raise MikeyError(
            f"timestamp {when - now:+.1f} s from local clock, outside ±{window:g} s",
            ErrorType.INVALID_TS,
        )
    return when
