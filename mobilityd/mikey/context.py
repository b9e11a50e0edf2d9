"""The outcome of a MIKEY exchange: one crypto context per CSB (RFC 3830 §3, §4.1.3, §4.5).

A :class:`CryptoContext` holds the TGK, CSB ID, RAND, crypto-session map and policies
of a Crypto Session Bundle, and what is needed to authenticate update messages (§4.5)
with the same peer. It is immutable: an accepted update returns a *new* context, so a
forged or replayed update can never change an existing one.

``srtp_master(cs_id)`` gives the SRTP master key and salt of crypto session ``cs_id``
(1-based position in the CS ID map, §6.1.1): the TEK derived from the TGK (§4.1.3) with
the key length of the session's SP (§6.10.1, default 16), and the salt carried in the
Key data sub-payload when there is one (§4.1.3 "SHALL use the salt key carried"),
otherwise the salt derived with constant 0x39A2C14B (default length 14).
A TEK sent directly (key data type TEK / TEK+SALT, §6.13) is the master key as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from mobilityd.mikey.constants import SrtpParam
from mobilityd.mikey.dh import DhKeyPair, DhKeyPool
from mobilityd.mikey.events import UpdateAccepted
from mobilityd.mikey.keys import MessageKeys, derive_srtp_salt, derive_tek
from mobilityd.mikey.payloads import SecurityPolicy, SrtpCsEntry
from mobilityd.mikey.replay import ReplayCache
from mobilityd.mikey.session_policy import Rng, SessionPolicy

__all__ = ["ContextSecrets", "CryptoContext", "KeyMode", "PreparedUpdate", "SrtpPolicy"]

SrtpPolicy = SecurityPolicy
"""The contract's name for an SRTP SP payload (RFC 3830 §6.10.1)."""

DEFAULT_MASTER_KEY_LEN = 16
DEFAULT_MASTER_SALT_LEN = 14


class KeyMode(Enum):
    """How the TGK was established (RFC 3830 §3.1-§3.3)."""

    PSK = "psk"
    PKE = "pke"
    DH = "dh"


@dataclass(frozen=True, slots=True)
class ContextSecrets:
    """What authenticates update messages of this CSB (never logged).

    * ``message_keys``: §4.1.4 keys from the PSK, or from the cached PKE envelope key,
      with this CSB's ID and RAND: they protect PSK-style updates (§4.5).
    * ``signing_key`` / ``peer_public_key``: our RSA key and the peer's (from its
      verified certificate) for signed DH updates.
    """

    message_keys: MessageKeys | None = None
    signing_key: rsa.RSAPrivateKey | None = None
    peer_public_key: rsa.RSAPublicKey | None = None


@dataclass(frozen=True, eq=False)
class CryptoContext:
    """A Crypto Session Bundle's keys and parameters (see the module docstring).

    Contexts compare and hash by identity (they are security state, not values).
    ``is_initiator`` is True on the side that sent the first I_MESSAGE of the CSB.
    ``tgk_salt`` is the salt carried with the TGK (TGK+SALT), ``tek_direct`` is True
    when the key data carried a TEK rather than a TGK. ``last_timestamp`` is the NTP
    value of the last message of this CSB sent or accepted.
    """

    mode: KeyMode
    csb_id: int
    tgk: bytes = field(repr=False)
    rand: bytes
    cs_map: tuple[SrtpCsEntry, ...]
    policies: Mapping[int, SecurityPolicy]
    local_id: bytes
    peer_id: bytes
    is_initiator: bool
    secrets: ContextSecrets = field(repr=False)
    replay_cache: ReplayCache = field(repr=False, compare=False)
    policy: SessionPolicy = field(repr=False)
    tgk_salt: bytes | None = field(default=None, repr=False)
    tek_direct: bool = False
    last_timestamp: int = 0

    def evolve(self, **changes: Any) -> CryptoContext:
        """A copy with ``changes`` (cheaper than ``dataclasses.replace`` on the hot path)."""
        unknown = changes.keys() - self.__dataclass_fields__.keys()
        if unknown:
            raise TypeError(f"unknown CryptoContext fields: {sorted(unknown)}")
        new = object.__new__(CryptoContext)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    def policy_for(self, cs_id: int) -> SecurityPolicy | None:
        """The SP payload that applies to crypto session ``cs_id`` (None: SRTP defaults)."""
        entry = self._entry(cs_id)
        return self.policies.get(entry.policy_no)

    def _entry(self, cs_id: int) -> SrtpCsEntry:
        if not 1 <= cs_id <= len(self.cs_map):
            raise ValueError(f"no crypto session {cs_id} (map has {len(self.cs_map)})")
        return self.cs_map[cs_id - 1]

    def srtp_master(self, cs_id: int) -> tuple[bytes, bytes]:
        """``(master_key, master_salt)`` for crypto session ``cs_id`` (1-based, §4.1.3)."""
        sp = self.policy_for(cs_id)
        key_len = DEFAULT_MASTER_KEY_LEN
        salt_len = DEFAULT_MASTER_SALT_LEN
        if sp is not None:
            key_len = sp.get_int(SrtpParam.SESSION_ENCR_KEY_LEN) or key_len
            salt_len = sp.get_int(SrtpParam.SESSION_SALT_KEY_LEN) or salt_len
        if self.tek_direct:
            master_key = self.tgk
        else:
            master_key = derive_tek(self.tgk, cs_id, self.csb_id, self.rand, key_len)
        if self.tgk_salt is not None:
            return master_key, self.tgk_salt
        return master_key, derive_srtp_salt(self.tgk, cs_id, self.csb_id, self.rand, salt_len)

    def ssrc_to_cs_id(self, ssrc: int) -> int | None:
        """The crypto session carrying ``ssrc`` (§4.4 Data SA lookup), if any."""
        for index, entry in enumerate(self.cs_map, start=1):
            if entry.ssrc == ssrc:
                return index
        return None

    # -- update messages (RFC 3830 §4.5) -------------------------------------------------

    def prepare_update(
        self,
        now: float,
        *,
        new_tgk: bytes | None = None,
        new_cs_map: tuple[SrtpCsEntry, ...] | list[SrtpCsEntry] | None = None,
        new_policies: tuple[SecurityPolicy, ...] = (),
        rng: Rng | None = None,
        want_verification: bool = False,
        dh_rekey: bool = False,
        dh_pool: DhKeyPool | None = None,
    ) -> PreparedUpdate:
        """Build an update message and the context this side uses once it is sent.

        ``want_verification`` sets the V flag: the peer then answers (see
        :meth:`receive_update`) and :meth:`PreparedUpdate.verify_reply` checks it.
        ``dh_rekey`` (DH contexts) sends a new DHi (from ``dh_pool`` or ``rng``): the
        peer must answer with DHr and DHi (§4.5), and :meth:`PreparedUpdate.verify_reply`
        returns the context with the new TGK.
        """
        from mobilityd.mikey.session_update import prepare_update  # noqa: PLC0415 (cycle)

        return prepare_update(
            self,
            now,
            new_tgk,
            new_cs_map,
            new_policies,
            rng,
            want_verification,
            dh_rekey=dh_rekey,
            dh_pool=dh_pool,
        )

    def build_update(
        self,
        now: float,
        new_tgk: bytes | None = None,
        new_cs_map: tuple[SrtpCsEntry, ...] | list[SrtpCsEntry] | None = None,
        rng: Rng | None = None,
    ) -> bytes:
        """Update message (§4.5): same CSB ID, new T, no RAND, optional new TGK / CS map.

        PSK contexts (and PKE contexts, whose envelope key is cached) send a pre-shared
        key message whose KEMAC MAC authenticates it; DH contexts send a signed DH
        message without DH values. See :meth:`prepare_update` for the sender's new
        context.
        """
        return self.prepare_update(now, new_tgk=new_tgk, new_cs_map=new_cs_map, rng=rng).message

    def verify_update(self, data: bytes, now: float) -> CryptoContext:
        """Check an update from the peer and return the updated context (§4.5, §5.3).

        Checks, in this order: parse, data type, same CSB ID, no RAND, timestamp
        within the skew, not in the replay cache, identity, MAC or signature; then
        records it in the replay cache and decrypts the new keys. Raises
        :class:`~mobilityd.mikey.errors.MikeyError` otherwise; this context and the
        replay cache are then unchanged.
        """
        from mobilityd.mikey.session_update import verify_update  # noqa: PLC0415 (cycle)

        return verify_update(self, data, now)

    def receive_update(
        self,
        data: bytes,
        now: float,
        rng: Rng | None = None,
        dh_pool: DhKeyPool | None = None,
    ) -> UpdateAccepted:
        """:meth:`verify_update`, plus the answer when the update asks for one.

        The answer is ``HDR, T, IDr, V`` for PSK-style contexts and a signed
        ``HDR, T, IDr, IDi, SIGNr`` for DH contexts; when a DH update carries a new DHi
        (re-keying) the answer adds DHr and DHi (§4.5 Figure 4.1), our key pair coming
        from ``dh_pool`` or ``rng``, and the returned context has the new TGK.
        """
        from mobilityd.mikey.session_update import receive_update  # noqa: PLC0415 (cycle)

        return receive_update(self, data, now, rng, dh_pool)


@dataclass(frozen=True, slots=True)
class PreparedUpdate:
    """An update message and the sender's context after sending it.

    ``ts`` is the update's timestamp value; ``wants_reply`` whether it set the V flag.
    """

    message: bytes
    context: CryptoContext
    ts: int = 0
    wants_reply: bool = False
    reply_auth_key: bytes | None = field(default=None, repr=False)
    dh_pair: DhKeyPair | None = field(default=None, repr=False)

    def verify_reply(self, data: bytes) -> CryptoContext:
        """Check the peer's answer to this update; returns :attr:`context` or raises."""
        from mobilityd.mikey.session_update import verify_update_reply  # noqa: PLC0415

        return verify_update_reply(self, data)
