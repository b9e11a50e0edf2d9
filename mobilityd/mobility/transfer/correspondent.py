"""The correspondent's side of a transfer (Alice; issue 6 steps 3-4, thesis §15.1).

On a REFER from the user's device, :func:`offer_transfer` builds the MIKEY I_MESSAGE for
the INVITE to the transfer target: an ordinary PSK (RFC 3830 §3.1) or PKE (§3.2)
initial message that carries **the same TGK, CSB ID and RAND** as the running call
(``existing=`` the call's context, docs/mikey.md item 18), so the target derives the
same TEKs (§4.1.3). The CS ID map (§6.1.1) keeps each of our streams with its *current*
ROC (so the target decrypts from our first packet) and gives each user-side stream a
**fresh SSRC** (ROC 0) that no device ever sent under this key: the SSRC is part of the
SRTP IV (RFC 3711 §4.1.1), so the new device's keystream never repeats the old one's
(RFC 3711 §9.1; choice justified in docs/transfer.md).

Credentials are looked up by the identity of the user **already in the call**
(``context.peer_id``): the PSK we share with that user or the certificate verified at
call setup; what the target presents is never used. DH (§3.3) cannot carry an existing
TGK and is never used. :meth:`TransferOffer.receive_response` verifies the target's V
(or signed) answer; only then may the new dialog be accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mobilityd.call.keying import Initiator, KeyingConfig, KeyMethod
from mobilityd.media.keying import keys_for_crypto_session
from mobilityd.media.srtp import SrtpSession
from mobilityd.mikey.constants import ErrorType
from mobilityd.mikey.context import CryptoContext
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.payloads import GeneralExtension, SrtpCsEntry
from mobilityd.mikey.session import PkeInitiator, PskInitiator, Rng
from mobilityd.mobility.transfer.errors import KeyTransportError, TransferUsageError
from mobilityd.mobility.transfer.events import TransferAccepted

__all__ = ["TransferOffer", "add_receive_streams", "offer_transfer", "transfer_cs_map"]

_SSRC_ATTEMPTS = 64


def fresh_ssrc(rng: Rng, taken: set[int]) -> int:
    """A random non-zero SSRC not in ``taken`` (RFC 3550 §8.1 random choice)."""
    for _ in range(_SSRC_ATTEMPTS):
        ssrc = int.from_bytes(rng(4), "big")
        if ssrc and ssrc not in taken:
            return ssrc
    raise TransferUsageError("the random source keeps giving used SSRCs")


def transfer_cs_map(
    context: CryptoContext,
    own_rocs: Mapping[int, int],
    used_ssrcs: Iterable[int],
    rng: Rng,
) -> tuple[tuple[SrtpCsEntry, ...], dict[int, int]]:
    """The CS ID map of the transfer (§6.1.1) and the user-side SSRC renames.

    ``own_rocs``: our sending SSRCs with their current ROC (``SrtpSession.get_roc``).
    ``used_ssrcs``: every SSRC any device of the user ever sent under this CSB.
    """
    taken = {entry.ssrc for entry in context.cs_map} | set(used_ssrcs) | set(own_rocs)
    entries: list[SrtpCsEntry] = []
    renames: dict[int, int] = {}
    for entry in context.cs_map:
        if entry.ssrc in own_rocs:
            entries.append(SrtpCsEntry(entry.policy_no, entry.ssrc, own_rocs[entry.ssrc]))
            continue
        new = fresh_ssrc(rng, taken)
        taken.add(new)
        renames[entry.ssrc] = new
        entries.append(SrtpCsEntry(entry.policy_no, new, 0))
    missing = set(own_rocs) - {entry.ssrc for entry in context.cs_map}
    if missing:
        raise TransferUsageError(f"SSRCs {sorted(missing)} are not in the call's CS ID map")
    if not renames:
        raise TransferUsageError("the CS ID map has no stream of the user to move")
    return tuple(entries), renames


def _initiator(
    config: KeyingConfig, context: CryptoContext, cs_map: Sequence[SrtpCsEntry],
    extensions: Sequence[GeneralExtension],
) -> Initiator:
    """PSK or PKE initiator keyed to the user already in the call (module docstring)."""
    if context.tek_direct:
        raise TransferUsageError("a call keyed by a direct TEK cannot be transferred")
    peer = config.peers.get(context.peer_id)
    if peer is None:
        raise TransferUsageError("no credentials for the user in the call")
    policies = tuple(context.policies.values())
    if peer.method is KeyMethod.PSK and peer.psk is not None:
        return PskInitiator(
            psk=peer.psk, local_id=context.local_id, peer_id=context.peer_id, cs_map=cs_map,
            policies=policies, policy=config.policy, replay_cache=config.replay_cache,
            existing=context, extensions=extensions,
        )
    if peer.certificate is not None and config.own is not None:
        return PkeInitiator(
            credentials=config.own, local_id=context.local_id, peer_id=context.peer_id,
            peer_certificate=peer.certificate, cs_map=cs_map, policies=policies,
            policy=config.policy, replay_cache=config.replay_cache, existing=context,
            extensions=extensions,
        )
    raise TransferUsageError(
        "neither a pre-shared key nor a verified certificate of the user: "
        "DH (RFC 3830 §3.3) cannot carry an existing TGK"
    )


@dataclass
class TransferOffer:
    """A transfer offered by the correspondent, waiting for the target's answer."""

    message: bytes = field(repr=False)
    cs_map: tuple[SrtpCsEntry, ...]
    ssrc_renames: dict[int, int]
    _initiator: Initiator = field(repr=False)
    accepted: TransferAccepted | None = None

    def receive_response(self, data: bytes, now: float) -> TransferAccepted:
        """Verify the target's R_MESSAGE (§3.1 V / §3.2 signed); :class:`KeyTransportError`
        if it does not verify (the offer stays open for the genuine answer)."""
        if self.accepted is not None:
            raise KeyTransportError("transfer answer already accepted", ErrorType.INVALID_TS)
        try:
            context = self._initiator.receive_response(data, now)
        except MikeyError as exc:
            raise KeyTransportError(f"transfer answer refused: {exc}", exc.error_type) from exc
        self.accepted = TransferAccepted(context, dict(self.ssrc_renames))
        return self.accepted


def offer_transfer(
    context: CryptoContext,
    config: KeyingConfig,
    *,
    own_rocs: Mapping[int, int],
    used_ssrcs: Iterable[int],
    now: float,
    rng: Rng,
    extensions: Sequence[GeneralExtension] = (),
) -> TransferOffer:
    """Build the transfer I_MESSAGE for the call keyed by ``context`` (module docstring)."""
    cs_map, renames = transfer_cs_map(context, own_rocs, used_ssrcs, rng)
    initiator = _initiator(config, context, cs_map, extensions)
    message = initiator.start(now, rng)
    return TransferOffer(message, cs_map, renames, initiator)


def add_receive_streams(rx: SrtpSession, accepted: TransferAccepted) -> list[int]:
    """Let our inbound session also take the new device's SSRCs (same CS IDs, so the
    same TEKs, §4.1.3); our sending session is not touched. Returns the new SSRCs."""
    added = []
    for cs_id, entry in enumerate(accepted.context.cs_map, start=1):
        if entry.ssrc in accepted.ssrc_renames.values():
            rx.add_stream(entry.ssrc, keys=keys_for_crypto_session(accepted.context, cs_id))
            added.append(entry.ssrc)
    return added
