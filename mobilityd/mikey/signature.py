"""SIGN payload signatures (RFC 3830 §4.2.6, §5.2, §6.5): RSA PKCS#1 v1.5 and RSA-PSS.

The signature covers the whole message except the Signature field (§5.2; the codec's
:meth:`MikeyMessage.authenticated_bytes`). The S type of the SIGN payload (Table 6.5)
says PKCS#1 v1.5 (mandatory) or PSS.

Hash function (the RFC is silent, §4.2.6 says "defined by the certificate"): SHA-256 by
default, SHA-1 (MIKEY's default hash of §4.2.1, for interop with old peers) on request;
both sides must be configured alike. PSS uses MGF1 with the same hash and a salt as long
as the hash (RFC 8017 §9.1 recommendation). PSS salts come from OpenSSL's generator,
not the injected ``rng``: PKCS#1 v1.5 signatures are deterministic, PSS ones are not.
"""

from __future__ import annotations

from enum import Enum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mobilityd.mikey.constants import ErrorType, SignatureType
from mobilityd.mikey.errors import MikeyError

__all__ = ["SignatureHash", "sign_data", "signature_length", "verify_signature"]


class SignatureHash(Enum):
    """Hash used inside RSA signatures (a local policy, see the module docstring)."""

    SHA256 = "sha256"
    SHA1 = "sha1"

    def algorithm(self) -> hashes.HashAlgorithm:
        return hashes.SHA256() if self is SignatureHash.SHA256 else hashes.SHA1()


def _padding(sig_type: SignatureType, hash_alg: hashes.HashAlgorithm) -> padding.AsymmetricPadding:
    if sig_type == SignatureType.RSA_PSS:
        return padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)
    return padding.PKCS1v15()


def signature_length(private_key: rsa.RSAPrivateKey) -> int:
    """Length of this key's signatures (the RSA modulus in bytes)."""
    return (private_key.key_size + 7) // 8


def sign_data(
    private_key: rsa.RSAPrivateKey,
    sig_type: SignatureType,
    data: bytes,
    hash_name: SignatureHash = SignatureHash.SHA256,
) -> bytes:
    """Sign ``data`` with the S type ``sig_type`` (RFC 3830 §6.5, Table 6.5)."""
    alg = hash_name.algorithm()
    return private_key.sign(data, _padding(SignatureType(sig_type), alg), alg)


def verify_signature(
    public_key: PublicKeyTypes,
    sig_type: SignatureType | int,
    data: bytes,
    signature: bytes,
    hash_name: SignatureHash = SignatureHash.SHA256,
) -> None:
    """Verify a SIGN payload; raises :class:`MikeyError` ``AUTH_FAILURE`` on mismatch.

    A key that is not RSA is ``INVALID_CERT`` (§4.2.6 only defines RSA); an unknown
    S type is ``AUTH_FAILURE`` too (the codec already refuses it while parsing).
    """
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise MikeyError("signer's key is not an RSA key", ErrorType.INVALID_CERT)
    try:
        kind = SignatureType(sig_type)
    except ValueError:
        raise MikeyError(f"signature type {sig_type} unknown", ErrorType.AUTH_FAILURE) from None
    alg = hash_name.algorithm()
    try:
        public_key.verify(signature, data, _padding(kind, alg), alg)
    except InvalidSignature:
        raise MikeyError("signature verification failed", ErrorType.AUTH_FAILURE) from None
