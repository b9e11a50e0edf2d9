"""An account's media settings (``[media]`` of docs/configuration.md) for the call agent.

* ``port_range``: where RTP/RTCP pairs are bound (:class:`~mobilityd.call.ports.MediaPortRange`,
  RFC 3550 §11); None keeps the kernel's choice of an even port (library use, tests).
* ``payload_types``: the G.711 formats (RFC 3551 §6: PCMU 0, PCMA 8) in preference order;
  offers list them in that order, answers take the first of them the offer has
  (RFC 3264 §5.1, §6.1).
* ``ptime_ms``: the ``a=ptime`` we put in offers and answers (RFC 8866 §6.4), the packet
  time we want to receive; what we send follows the peer's ``a=ptime`` when usable
  (:attr:`~mobilityd.call.negotiation.NegotiatedMedia.ptime_ms`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mobilityd.call import sdpmedia as sm
from mobilityd.call.errors import CallError
from mobilityd.call.ports import MediaPortRange

__all__ = ["MediaConfigError", "MediaOptions"]


class MediaConfigError(CallError):
    """``[media]`` values the call machinery cannot use (names the key)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"media.{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class MediaOptions:
    """See the module docstring."""

    port_range: MediaPortRange | None = None
    payload_types: tuple[int, ...] = tuple(sm.CODEC_PAYLOAD_TYPES[c] for c in sm.DEFAULT_CODECS)
    ptime_ms: int = sm.PTIME_MS

    def __post_init__(self) -> None:
        if not self.payload_types or any(pt not in sm.G711_NAMES for pt in self.payload_types):
            raise MediaConfigError("codecs", f"payload types {list(self.payload_types)}: "
                                   f"only {sorted(sm.G711_NAMES)} are implemented")
        if self.ptime_ms not in sm.PTIME_RANGE_MS:
            raise MediaConfigError("ptime_ms", f"{self.ptime_ms} is not within 10..120")

    @classmethod
    def from_settings(cls, rtp_port_min: int, rtp_port_max: int, codecs: tuple[str, ...],
                      ptime_ms: int) -> MediaOptions:
        """From the ``[media]`` keys; :class:`MediaConfigError` names the bad one."""
        try:
            port_range = MediaPortRange(rtp_port_min, rtp_port_max)
        except ValueError as exc:
            raise MediaConfigError("rtp_port_min", str(exc)) from None
        try:
            payload_types = sm.payload_types_for(tuple(codecs))
        except ValueError as exc:
            raise MediaConfigError("codecs", str(exc)) from None
        return cls(port_range, payload_types, ptime_ms)

    @property
    def codecs(self) -> tuple[str, ...]:
        """The encoding names, in preference order."""
        return tuple(sm.G711_NAMES[pt] for pt in self.payload_types)
