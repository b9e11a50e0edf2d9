"""The PKE envelope key (RFC 3830 §3.2, §4.2.5, §6.3): RSA encryption to the responder.

§4.2.5: "It is MANDATORY to support RSA PKCS#1, v1.5, and it is RECOMMENDED to also
support RSA OAEP". Which one a message uses is "defined by the certificate" — in
practice a local policy both sides share, since an RSA certificate does not say. Our
default is PKCS#1 v1.5 (the mandatory one, for interoperability); OAEP (SHA-1 / MGF1-SHA-1,
the PKCS#1 v2.1 defaults the RFC cites) is available as an option.

Padding oracles: a PKCS#1 v1.5 decryption failure and a wrong-length result both raise
the same ``AUTH_FAILURE`` as a bad KEMAC MAC; with OpenSSL's implicit rejection a bad
ciphertext yields a random key whose MAC then fails, so the peer learns nothing more.
The envelope key is 32 bytes (one 256-bit PRF block, §4.1.2) drawn from the injected rng.
"""

from __future__ import annotations

from enum import Enum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mobilityd.mikey.constants import ErrorType
from mobilityd.mikey.errors import MikeyError

__all__ = ["ENVELOPE_KEY_LEN", "EnvelopePadding", "decrypt_envelope_key", "encrypt_envelope_key"]

ENVELOPE_KEY_LEN = 32


class EnvelopePadding(Enum):
    """RSA encryption scheme for the envelope key (RFC 3830 §4.2.5)."""

    PKCS1_V15 = "pkcs1v15"
    OAEP = "oaep"

    def to_padding(self) -> padding.AsymmetricPadding:
        if self is EnvelopePadding.OAEP:
            sha1 = hashes.SHA1()
            return padding.OAEP(mgf=padding.MGF1(sha1), algorithm=sha1, label=None)
        return padding.PKCS1v15()


def encrypt_envelope_key(
    public_key: PublicKeyTypes,
    env_key: bytes,
    scheme: EnvelopePadding = EnvelopePadding.PKCS1_V15,
) -> bytes:
    """``PKE = E(PKr, env_key)`` (RFC 3830 §3.2); the responder's key must be RSA."""
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise MikeyError("responder's key is not an RSA key", ErrorType.INVALID_CERT)
    return public_key.encrypt(env_key, scheme.to_padding())


def decrypt_envelope_key(
    private_key: rsa.RSAPrivateKey,
    data: bytes,
    scheme: EnvelopePadding = EnvelopePadding.PKCS1_V15,
    expected_len: int = ENVELOPE_KEY_LEN,
) -> bytes:
    """Recover the envelope key; any failure is ``AUTH_FAILURE`` (see module docstring)."""
    try:
        env_key = private_key.decrypt(data, scheme.to_padding())
    except ValueError:
        raise MikeyError("envelope key decryption failed", ErrorType.AUTH_FAILURE) from None
    if len(env_key) != expected_len:
        raise MikeyError("envelope key decryption failed", ErrorType.AUTH_FAILURE)
    return env_key
