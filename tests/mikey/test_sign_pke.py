"""RSA signatures (RFC 3830 §4.2.6, §6.5) and the PKE envelope key (§3.2, §4.2.5)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from mobilityd.mikey.constants import ErrorType, SignatureType
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.pke import EnvelopePadding, decrypt_envelope_key, encrypt_envelope_key
from mobilityd.mikey.signature import SignatureHash, sign_data, verify_signature


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize("sig_type", list(SignatureType))
@pytest.mark.parametrize("hash_name", list(SignatureHash))
def test_sign_and_verify_rfc3830_6_5(
    key: rsa.RSAPrivateKey, sig_type: SignatureType, hash_name: SignatureHash
) -> None:
    sig = sign_data(key, sig_type, b"message", hash_name)
    assert len(sig) == 256
    verify_signature(key.public_key(), sig_type, b"message", sig, hash_name)
    with pytest.raises(MikeyError) as info:
        verify_signature(key.public_key(), sig_type, b"messagf", sig, hash_name)
    assert info.value.error_type is ErrorType.AUTH_FAILURE


def test_pkcs1_v15_signature_is_standard(key: rsa.RSAPrivateKey) -> None:
    """Checked with the library's own PKCS#1 v1.5 verification, SHA-256 by default."""
    sig = sign_data(key, SignatureType.RSA_PKCS1_V15, b"m")
    key.public_key().verify(sig, b"m", padding.PKCS1v15(), hashes.SHA256())


def test_signature_type_mismatch_fails(key: rsa.RSAPrivateKey) -> None:
    sig = sign_data(key, SignatureType.RSA_PSS, b"m")
    with pytest.raises(MikeyError) as info:
        verify_signature(key.public_key(), SignatureType.RSA_PKCS1_V15, b"m", sig)
    assert info.value.error_type is ErrorType.AUTH_FAILURE


@pytest.mark.parametrize("bad", [b"", b"\x00" * 256, b"\xff" * 300])
def test_garbage_signature_is_auth_failure(key: rsa.RSAPrivateKey, bad: bytes) -> None:
    with pytest.raises(MikeyError) as info:
        verify_signature(key.public_key(), SignatureType.RSA_PKCS1_V15, b"m", bad)
    assert info.value.error_type is ErrorType.AUTH_FAILURE


def test_non_rsa_signer_is_invalid_cert() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(MikeyError) as info:
        verify_signature(ec_key.public_key(), SignatureType.RSA_PKCS1_V15, b"m", b"x")
    assert info.value.error_type is ErrorType.INVALID_CERT


@pytest.mark.parametrize("scheme", list(EnvelopePadding))
def test_envelope_key_round_trip_rfc3830_3_2(
    key: rsa.RSAPrivateKey, scheme: EnvelopePadding
) -> None:
    env_key = bytes(range(32))
    data = encrypt_envelope_key(key.public_key(), env_key, scheme)
    assert len(data) == 256
    assert decrypt_envelope_key(key, data, scheme) == env_key


def test_pkcs1_v15_is_the_default_rfc3830_4_2_5(key: rsa.RSAPrivateKey) -> None:
    data = encrypt_envelope_key(key.public_key(), bytes(32))
    assert key.decrypt(data, padding.PKCS1v15()) == bytes(32)


@pytest.mark.parametrize("scheme", list(EnvelopePadding))
@pytest.mark.parametrize("bad", [b"", b"\x01" * 256, b"\x00" * 10])
def test_bad_envelope_is_auth_failure(
    key: rsa.RSAPrivateKey, scheme: EnvelopePadding, bad: bytes
) -> None:
    with pytest.raises(MikeyError) as info:
        decrypt_envelope_key(key, bad, scheme)
    assert info.value.error_type is ErrorType.AUTH_FAILURE


def test_envelope_for_other_key_is_auth_failure(key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = encrypt_envelope_key(other.public_key(), bytes(32), EnvelopePadding.OAEP)
    with pytest.raises(MikeyError) as info:
        decrypt_envelope_key(key, data, EnvelopePadding.OAEP)
    assert info.value.error_type is ErrorType.AUTH_FAILURE
