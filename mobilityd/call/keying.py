"""Which MIKEY method a call uses and with which credentials (RFC 3830 §3.1-§3.3).

:class:`KeyingConfig` holds our own certificate (PKE, DH-SIGN), the per-peer
credentials (:class:`PeerKeying`: method, pre-shared key, the peer's certificate for
PKE) keyed by the peer's MIKEY identity (:func:`mobilityd.call.identity.sip_identity`),
the shared replay cache (§5.4) and the precomputed DH key-pair pool (§3.3) that the
asyncio adapter refills off the hot path (:meth:`KeyingConfig.refill_dh_pool`).

Sans-I/O: :func:`new_initiator` builds an initiator object (its ``start(now, rng)``
makes the I_MESSAGE), :func:`new_responder` the Responder bound to the caller's SIP
identity.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography import x509

from mobilityd.media.srtp import SrtpSuite
from mobilityd.mikey.constants import SrtpParam
from mobilityd.mikey.context import CryptoContext
from mobilityd.mikey.dh import DhKeyPool
from mobilityd.mikey.payloads import GeneralExtension, PolicyParam, SrtpCsEntry
from mobilityd.mikey.payloads import SecurityPolicy as SpPayload
from mobilityd.mikey.replay import ReplayCache
from mobilityd.mikey.session import (
    DhInitiator,
    PkCredentials,
    PkeInitiator,
    PskInitiator,
    Responder,
    Rng,
    SessionPolicy,
)

__all__ = [
    "Initiator",
    "KeyMethod",
    "KeyingConfig",
    "PeerKeying",
    "new_initiator",
    "new_responder",
    "sp_payload_for",
]


class KeyMethod(enum.StrEnum):
    """The MIKEY key-agreement methods (RFC 3830 §3.1 PSK, §3.2 PKE, §3.3 DH-SIGN)."""

    PSK = "psk"
    PKE = "pke"
    DH = "dh"


class Initiator(Protocol):
    """What the three MIKEY initiators have in common (mobilityd.mikey.session)."""

    def start(self, now: float, rng: Rng) -> bytes: ...

    def receive_response(self, data: bytes, now: float) -> CryptoContext: ...

    @property
    def context(self) -> CryptoContext | None: ...


@dataclass(frozen=True)
class PeerKeying:
    """How we key calls with one peer: method, PSK (§3.1), its certificate (§3.2)."""

    method: KeyMethod
    psk: bytes | None = field(default=None, repr=False)
    certificate: x509.Certificate | None = field(default=None, repr=False)


@dataclass
class KeyingConfig:
    """Our MIKEY credentials and per-peer settings (see the module docstring)."""

    peers: Mapping[bytes, PeerKeying] = field(default_factory=dict)
    own: PkCredentials | None = None
    default_method: KeyMethod = KeyMethod.PSK
    suite: SrtpSuite = SrtpSuite.AES_CM_128_HMAC_SHA1_80
    policy: SessionPolicy = field(default_factory=SessionPolicy)
    dh_pool: DhKeyPool = field(default_factory=lambda: DhKeyPool(target_size=4))
    replay_cache: ReplayCache = field(default_factory=ReplayCache)

    def peer(self, identity: bytes) -> PeerKeying:
        """The settings for ``identity`` (a peer without entry: default method, no PSK)."""
        return self.peers.get(identity) or PeerKeying(self.default_method)

    def psk_for(self, identity: bytes) -> bytes | None:
        """The Responder's PSK lookup by Initiator identity (§3.1)."""
        entry = self.peers.get(identity)
        return entry.psk if entry is not None else None

    def refill_dh_pool(self, rng: Rng) -> int:
        """Generate the pool's missing DH pairs (slow: run it off the event loop)."""
        return self.dh_pool.fill(rng)


@functools.cache
def sp_payload_for(suite: SrtpSuite, policy_no: int = 0) -> SpPayload:
    """The SP payload asking for ``suite`` (RFC 3830 §6.10.1: auth tag length 10 or 4);
    built once per (suite, number): the payload is an immutable value."""
    base = SpPayload.srtp_defaults(policy_no)
    params = tuple(
        PolicyParam(p.param_type, bytes((suite.tag_length,)))
        if p.param_type == SrtpParam.AUTH_TAG_LEN else p
        for p in base.params
    )
    return SpPayload(policy_no, base.prot_type, params)


def new_initiator(
    config: KeyingConfig,
    *,
    local_id: bytes,
    peer_id: bytes,
    cs_map: Sequence[SrtpCsEntry],
    extensions: Sequence[GeneralExtension] = (),
    existing: CryptoContext | None = None,
) -> Initiator:
    """An initiator of the method configured for ``peer_id``; a missing credential is
    a :class:`ValueError` (local configuration error)."""
    peer = config.peer(peer_id)
    policies = (sp_payload_for(config.suite),)
    if peer.method is KeyMethod.PSK:
        if peer.psk is None:
            raise ValueError(f"no pre-shared key for {peer_id.decode(errors='replace')}")
        return PskInitiator(
            psk=peer.psk, local_id=local_id, peer_id=peer_id, cs_map=cs_map,
            policies=policies, policy=config.policy, replay_cache=config.replay_cache,
            existing=existing, extensions=extensions,
        )
    if config.own is None:
        raise ValueError(f"{peer.method.value} needs our own certificate and key")
    if peer.method is KeyMethod.PKE:
        if peer.certificate is None:
            raise ValueError(f"PKE needs the certificate of {peer_id.decode(errors='replace')}")
        return PkeInitiator(
            credentials=config.own, local_id=local_id, peer_id=peer_id,
            peer_certificate=peer.certificate, cs_map=cs_map, policies=policies,
            policy=config.policy, replay_cache=config.replay_cache, existing=existing,
            extensions=extensions,
        )
    return DhInitiator(
        credentials=config.own, local_id=local_id, peer_id=peer_id, cs_map=cs_map,
        policies=policies, policy=config.policy, replay_cache=config.replay_cache,
        key_pool=config.dh_pool, extensions=extensions,
    )


def new_responder(config: KeyingConfig, *, local_id: bytes, caller_id: bytes) -> Responder:
    """The Responder for one offer: bound to the caller's SIP identity (``peer_id``)."""
    return Responder(
        local_id=local_id,
        psk=config.psk_for,
        pk=config.own,
        dh_pool=config.dh_pool,
        peer_id=caller_id,
        policy=config.policy,
        replay_cache=config.replay_cache,
    )
