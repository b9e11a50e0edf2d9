"""Local policy and credentials of MIKEY key-agreement sessions (RFC 3830 §3, §4.3, §5.4).

These are configuration values handed to initiators, responders and the resulting
:class:`~mobilityd.mikey.context.CryptoContext`; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mobilityd.mikey.certs import certificate_der
from mobilityd.mikey.constants import EncrAlg, MacAlg, SignatureType
from mobilityd.mikey.dh import DEFAULT_DH_POLICY, DhPolicy
from mobilityd.mikey.pke import EnvelopePadding
from mobilityd.mikey.signature import SignatureHash

__all__ = ["PkCredentials", "Rng", "SessionPolicy"]

Rng = Callable[[int], bytes]
"""Injected randomness: ``rng(n)`` returns ``n`` random bytes (``os.urandom`` in the daemon)."""


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """What this side sends and accepts.

    * ``clock_skew``: allowed difference between a message timestamp and ``now``
      (seconds, §5.4); also how long the replay cache remembers a message.
    * ``encr_alg`` / ``mac_alg``: what we send in KEMAC and V (§4.2.3, §4.2.4).
    * ``allow_null``: accept NULL encryption / NULL MAC from peers (§4.2.3 says they
      MUST NOT be used unless the signalling is protected; off by default).
    * ``rand_len``: RAND length we send (§6.11: at least 16); ``min_rand_len`` the
      shortest RAND we accept (shorter is ``UNSPECIFIED``).
    * ``tgk_len``: TGK length we generate.
    * ``dh_policy``: acceptable DH groups (only OAKLEY 5 by default, §4.2.7).
    * ``sig_type`` / ``sig_hash``: how we sign (§6.5) and the hash both sides use.
    * ``envelope_padding``: RSA scheme for the PKE envelope key (§4.2.5).
    """

    clock_skew: float = 600.0
    encr_alg: EncrAlg = EncrAlg.AES_CM_128
    mac_alg: MacAlg = MacAlg.HMAC_SHA1_160
    allow_null: bool = False
    rand_len: int = 16
    min_rand_len: int = 16
    tgk_len: int = 16
    dh_policy: DhPolicy = DEFAULT_DH_POLICY
    sig_type: SignatureType = SignatureType.RSA_PKCS1_V15
    sig_hash: SignatureHash = SignatureHash.SHA256
    envelope_padding: EnvelopePadding = EnvelopePadding.PKCS1_V15


@dataclass(frozen=True, slots=True)
class PkCredentials:
    """Our RSA key and certificate plus the CA we trust for peers (§4.3.2 trusted root)."""

    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate = field(repr=False)
    ca: x509.Certificate = field(repr=False)
    certificate_der: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "certificate_der", certificate_der(self.certificate))
