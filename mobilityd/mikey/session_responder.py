"""The Responder of every MIKEY method (RFC 3830 §3.1-§3.3, §5.3), sans-I/O.

:meth:`Responder.receive` takes an I_MESSAGE, ``now`` and (for DH) injected randomness,
and returns :class:`~mobilityd.mikey.events.KeyAgreementCompleted` with the new context
and the R_MESSAGE to send, or raises :class:`~mobilityd.mikey.errors.MikeyError`
carrying the ERR type; :func:`~mobilityd.mikey.session_error.error_response` turns that
into the error message of §5.1.2 (None when the message should just be dropped).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mobilityd.mikey.constants import DataType, ErrorType
from mobilityd.mikey.dh import DhKeyPool
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.events import KeyAgreementCompleted
from mobilityd.mikey.replay import ReplayCache
from mobilityd.mikey.session_common import identities, parse
from mobilityd.mikey.session_dh import respond_dh
from mobilityd.mikey.session_pke import respond_pke
from mobilityd.mikey.session_policy import PkCredentials, Rng, SessionPolicy
from mobilityd.mikey.session_psk import respond_psk

__all__ = ["PskLookup", "Responder"]

PskLookup = Callable[[bytes], bytes | None]
"""Pre-shared key of an Initiator identity (None: unknown peer)."""


@dataclass
class Responder:
    """Answers I_MESSAGEs of the methods it has credentials for.

    * ``psk``: one pre-shared key, or a lookup by the Initiator's identity.
    * ``pk``: our RSA key, certificate and trusted CA (PKE and DH-SIGN).
    * ``dh_pool``: precomputed DH key pairs (DH-SIGN); without it pairs are generated
      per exchange from the ``rng`` given to :meth:`receive`.
    * ``peer_id``: the Initiator's identity when the signalling already told us
      (SIP From); it must then agree with the message.
    * ``replay_cache``: shared by every context this responder creates (§5.4).
    """

    local_id: bytes
    psk: bytes | PskLookup | None = field(default=None, repr=False)
    pk: PkCredentials | None = None
    dh_pool: DhKeyPool | None = None
    peer_id: bytes | None = None
    policy: SessionPolicy = field(default_factory=SessionPolicy)
    replay_cache: ReplayCache | None = None

    def __post_init__(self) -> None:
        if self.replay_cache is None:
            self.replay_cache = ReplayCache(window=self.policy.clock_skew)

    def receive(self, data: bytes, now: float, rng: Rng | None = None) -> KeyAgreementCompleted:
        """Handle one I_MESSAGE; raises :class:`MikeyError` (see the module docstring)."""
        msg = parse(data)
        replay = self.replay_cache
        assert replay is not None
        kind = msg.header.data_type
        if kind == DataType.PSK_INIT:
            if self.psk is None:
                raise MikeyError("pre-shared key method not configured", ErrorType.INVALID_DT)
            id_i, _ = identities(msg, self.local_id, self.peer_id)
            psk = self.psk(id_i) if callable(self.psk) else self.psk
            if psk is None:
                raise MikeyError("no pre-shared key for this Initiator", ErrorType.INVALID_ID)
            context, reply = respond_psk(
                msg, now, psk, self.local_id, self.peer_id, self.policy, replay
            )
            return KeyAgreementCompleted(context, reply)
        if kind == DataType.PK_INIT:
            if self.pk is None:
                raise MikeyError("public-key method not configured", ErrorType.INVALID_DT)
            context, reply = respond_pke(
                msg, now, self.pk, self.local_id, self.peer_id, self.policy, replay
            )
            return KeyAgreementCompleted(context, reply)
        if kind == DataType.DH_INIT:
            if self.pk is None:
                raise MikeyError("DH method not configured", ErrorType.INVALID_DT)
            if rng is None and self.dh_pool is None:
                raise ValueError("DH responder needs rng or a key pool")
            context, reply_bytes = respond_dh(
                msg, now, self.pk, self.local_id, self.peer_id, self.policy, replay,
                self.dh_pool, rng,
            )
            return KeyAgreementCompleted(context, reply_bytes)
        raise MikeyError(f"data type {kind.name} is not an I_MESSAGE", ErrorType.INVALID_DT)
