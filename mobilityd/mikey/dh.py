"""Diffie-Hellman for MIKEY DH-SIGN (RFC 3830 §3.3, §4.2.7, §6.4), sans-I/O.

Groups: OAKLEY 5 (the 1536-bit MODP group of RFC 3526 §2, mandatory), OAKLEY 1 and
OAKLEY 2 (RFC 2412 Appendix E.1 / E.2, 768 and 1024 bits). All use generator 2. The
default :class:`DhPolicy` accepts only OAKLEY 5: groups 1 and 2 are too weak today and
are refused with :class:`MikeyError` ``INVALID_DH`` (RFC 3830 §6.12), never a crash.

Randomness is injected: a private exponent is ``rng(32)`` (256 bits, more than twice the
~90-bit strength RFC 3526 §8 gives group 5). The public value ``g^x mod p`` is computed
by OpenSSL through ``cryptography`` (an exchange of ``x`` with the generator as the
"peer" value), which is ~6x faster than Python's ``pow`` and keeps ``x`` from our RNG.

The TGK of the DH method (§3.3) is ``g^(xi*xr) mod p`` as a big-endian byte string of the
prime's length (the DH value length of Table 6.4), left-padded with zeros.

:class:`DhKeyPool` holds precomputed key pairs (the thesis shows precomputation is what
makes DH acceptable at call setup); it is filled by explicit :meth:`DhKeyPool.fill`
calls with injected randomness, which a daemon adapter makes off the hot path.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

from cryptography.hazmat.primitives.asymmetric import dh
from cryptography.utils import CryptographyDeprecationWarning

from mobilityd.mikey.constants import DH_VALUE_LENGTHS, DhGroup, ErrorType
from mobilityd.mikey.errors import MikeyError

__all__ = [
    "DEFAULT_DH_POLICY",
    "PRIVATE_EXPONENT_LEN",
    "DhKeyPair",
    "DhKeyPool",
    "DhPolicy",
    "check_group",
    "compute_tgk",
    "generate_key_pair",
    "group_prime",
]


Rng = Callable[[int], bytes]
GENERATOR = 2
PRIVATE_EXPONENT_LEN = 32

_OAKLEY_1_HEX = (  # RFC 2412 Appendix E.1, 768 bits
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22"
    "514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6"
    "F44C42E9A63A3620FFFFFFFFFFFFFFFF"
)
_OAKLEY_2_HEX = (  # RFC 2412 Appendix E.2, 1024 bits
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22"
    "514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6"
    "F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381"
    "FFFFFFFFFFFFFFFF"
)
_OAKLEY_5_HEX = (  # RFC 3526 §2, 1536 bits
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22"
    "514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6"
    "F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D"
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF"
)
_PRIMES = {
    DhGroup.OAKLEY_1: int(_OAKLEY_1_HEX, 16),
    DhGroup.OAKLEY_2: int(_OAKLEY_2_HEX, 16),
    DhGroup.OAKLEY_5: int(_OAKLEY_5_HEX, 16),
}


def group_prime(group: DhGroup) -> int:
    """The MODP prime of ``group`` (RFC 3526 §2, RFC 2412 Appendix E)."""
    return _PRIMES[group]


@contextmanager
def _ffdh_allowed() -> Iterator[None]:
    """FFDH is "deprecated" in ``cryptography`` in favour of ECDH, but MIKEY (RFC 3830
    §4.2.7) only defines MODP groups: silence that one warning around our DH calls."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


@cache
def _parameter_numbers(group: DhGroup) -> dh.DHParameterNumbers:
    with _ffdh_allowed():
        return dh.DHParameterNumbers(_PRIMES[group], GENERATOR)


@dataclass(frozen=True, slots=True)
class DhPolicy:
    """Which DH groups this side accepts (RFC 3830 §4.2.7 makes 1 and 2 optional)."""

    allowed_groups: frozenset[DhGroup] = frozenset({DhGroup.OAKLEY_5})


DEFAULT_DH_POLICY = DhPolicy()


def check_group(group: int, policy: DhPolicy = DEFAULT_DH_POLICY) -> DhGroup:
    """Return ``group`` as a :class:`DhGroup` or raise ``INVALID_DH`` (RFC 3830 §6.12)."""
    try:
        known = DhGroup(group)
    except ValueError:
        raise MikeyError(f"DH group {group} unknown", ErrorType.INVALID_DH) from None
    if known not in policy.allowed_groups:
        raise MikeyError(f"DH group {known.name} refused by policy", ErrorType.INVALID_DH)
    return known


@dataclass(frozen=True, slots=True)
class DhKeyPair:
    """A private exponent and its public value ``g^x mod p`` (DH value of §6.4)."""

    group: DhGroup
    private_key: dh.DHPrivateKey = field(repr=False)
    public_value: bytes = field(repr=False)


def generate_key_pair(group: DhGroup, rng: Rng) -> DhKeyPair:
    """A key pair whose private exponent is ``rng(32)`` (kept in ``[2, p-2]``)."""
    numbers = _parameter_numbers(group)
    prime = _PRIMES[group]
    x = int.from_bytes(rng(PRIVATE_EXPONENT_LEN), "big") % (prime - 3) + 2
    with _ffdh_allowed():
        # The public value g^x is computed by OpenSSL as the "shared secret" of x with g.
        scratch = dh.DHPrivateNumbers(x, dh.DHPublicNumbers(GENERATOR, numbers)).private_key()
        generator_key = dh.DHPublicNumbers(GENERATOR, numbers).public_key()
        public = scratch.exchange(generator_key).rjust(DH_VALUE_LENGTHS[group], b"\x00")
        y = int.from_bytes(public, "big")
        private_key = dh.DHPrivateNumbers(x, dh.DHPublicNumbers(y, numbers)).private_key()
    return DhKeyPair(group=group, private_key=private_key, public_value=public)


def _peer_key(group: DhGroup, peer_value: bytes) -> dh.DHPublicKey:
    """Partial public-value validation: length of Table 6.4 and ``1 < y < p - 1``."""
    if len(peer_value) != DH_VALUE_LENGTHS[group]:
        raise MikeyError(
            f"DH value of {len(peer_value)} bytes for {group.name}", ErrorType.INVALID_DH
        )
    y = int.from_bytes(peer_value, "big")
    if not 1 < y < _PRIMES[group] - 1:
        raise MikeyError("DH value outside 2..p-2", ErrorType.INVALID_DH)
    with _ffdh_allowed():
        return dh.DHPublicNumbers(y, _parameter_numbers(group)).public_key()


def compute_tgk(pair: DhKeyPair, peer_value: bytes) -> bytes:
    """TGK = ``g^(xi*xr) mod p`` (RFC 3830 §3.3), the prime's length in bytes."""
    peer = _peer_key(pair.group, peer_value)
    try:
        with _ffdh_allowed():
            shared = pair.private_key.exchange(peer)
    except ValueError as exc:  # OpenSSL refused the value
        raise MikeyError(f"DH computation failed: {exc}", ErrorType.INVALID_DH) from exc
    return shared.rjust(DH_VALUE_LENGTHS[pair.group], b"\x00")


@dataclass(slots=True)
class DhKeyPool:
    """Precomputed DH key pairs of one group, consumed one per exchange.

    Sans-I/O: :meth:`fill` runs the expensive generation with the randomness it is given;
    :meth:`take` pops a ready pair or, when the pool is empty, generates one inline (the
    slow path, counted in :attr:`misses`). :attr:`deficit` tells the adapter how many
    pairs to add off the hot path.
    """

    group: DhGroup = DhGroup.OAKLEY_5
    target_size: int = 8
    _pairs: deque[DhKeyPair] = field(default_factory=deque, repr=False)
    misses: int = 0

    def __len__(self) -> int:
        return len(self._pairs)

    @property
    def deficit(self) -> int:
        """How many pairs :meth:`fill` should add to reach :attr:`target_size`."""
        return max(0, self.target_size - len(self._pairs))

    def fill(self, rng: Rng, count: int | None = None) -> int:
        """Generate ``count`` pairs (default: the deficit); returns how many were added."""
        wanted = self.deficit if count is None else count
        for _ in range(wanted):
            self._pairs.append(generate_key_pair(self.group, rng))
        return wanted

    def take(self, rng: Rng) -> DhKeyPair:
        """A precomputed pair, or one generated now from ``rng`` if the pool is empty."""
        if self._pairs:
            return self._pairs.popleft()
        self.misses += 1
        return generate_key_pair(self.group, rng)
