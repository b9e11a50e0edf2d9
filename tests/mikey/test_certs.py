"""Certificates with SIP URI subjectAltName against a configured CA (RFC 3830 §4.3, §6.7, §6.8)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mobilityd.mikey.certs import (
    cert_hash,
    certificate_der,
    check_cert_hash,
    issue_certificate,
    sip_uris,
    verify_peer_certificate,
)
from mobilityd.mikey.constants import ErrorType, HashFunc
from mobilityd.mikey.errors import MikeyError

NOW = 1_795_000_000.0
YEAR = 365 * 86400.0


@pytest.fixture(scope="module")
def pki():  # type: ignore[no-untyped-def]
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = issue_certificate(ca_key.public_key(), ca_key, "Test CA", not_before=NOW - YEAR,
                           not_after=NOW + YEAR, is_ca=True)
    alice_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    alice = issue_certificate(alice_key.public_key(), ca_key, "alice", issuer=ca,
                              sip_uri="sip:alice@example.org", not_before=NOW - 86400,
                              not_after=NOW + 86400, serial=2)
    return {"ca_key": ca_key, "ca": ca, "alice_key": alice_key, "alice": alice}


def expect(error_type: ErrorType, fn, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MikeyError) as info:
        fn(*args, **kwargs)
    assert info.value.error_type is error_type, str(info.value)


def test_valid_leaf_is_accepted_with_its_sip_uri(pki) -> None:  # type: ignore[no-untyped-def]
    der = certificate_der(pki["alice"])
    verified = verify_peer_certificate(der, pki["ca"], NOW, "sip:alice@EXAMPLE.org")
    assert verified.sip_uris == ("sip:alice@example.org",)
    assert verified.public_key.public_numbers() == pki["alice_key"].public_key().public_numbers()


@pytest.mark.parametrize("when", [NOW - 2 * 86400, NOW + 2 * 86400])
def test_leaf_outside_validity_is_invalid_cert(pki, when: float) -> None:  # type: ignore[no-untyped-def]
    expect(ErrorType.INVALID_CERT, verify_peer_certificate, certificate_der(pki["alice"]),
           pki["ca"], when)


def test_expired_ca_is_invalid_cert(pki) -> None:  # type: ignore[no-untyped-def]
    expect(ErrorType.INVALID_CERT, verify_peer_certificate, certificate_der(pki["alice"]),
           pki["ca"], NOW + 2 * YEAR)


def test_identity_not_in_certificate_is_auth_failure(pki) -> None:  # type: ignore[no-untyped-def]
    expect(ErrorType.AUTH_FAILURE, verify_peer_certificate, certificate_der(pki["alice"]),
           pki["ca"], NOW, "sip:mallory@example.org")
    expect(ErrorType.AUTH_FAILURE, verify_peer_certificate, certificate_der(pki["alice"]),
           pki["ca"], NOW, "sip:Alice@example.org")  # the user part is case-sensitive


def test_certificate_from_another_ca_is_invalid_cert(pki) -> None:  # type: ignore[no-untyped-def]
    rogue_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rogue = issue_certificate(rogue_key.public_key(), rogue_key, "Test CA",
                              not_before=NOW - YEAR, not_after=NOW + YEAR, is_ca=True)
    forged = issue_certificate(pki["alice_key"].public_key(), rogue_key, "alice", issuer=rogue,
                               sip_uri="sip:alice@example.org", not_before=NOW - 1,
                               not_after=NOW + 1)
    expect(ErrorType.INVALID_CERT, verify_peer_certificate, certificate_der(forged), pki["ca"], NOW)


def test_leaf_as_trust_anchor_is_refused(pki) -> None:  # type: ignore[no-untyped-def]
    expect(ErrorType.INVALID_CERT, verify_peer_certificate, certificate_der(pki["alice"]),
           pki["alice"], NOW)


def test_certificate_without_sip_uri_is_invalid_cert(pki) -> None:  # type: ignore[no-untyped-def]
    bare = issue_certificate(pki["alice_key"].public_key(), pki["ca_key"], "bare",
                             issuer=pki["ca"], not_before=NOW - 1, not_after=NOW + 1)
    assert sip_uris(bare) == ()
    expect(ErrorType.INVALID_CERT, verify_peer_certificate, certificate_der(bare), pki["ca"], NOW)


def test_non_rsa_key_is_invalid_cert(pki) -> None:  # type: ignore[no-untyped-def]
    ec_key = ec.generate_private_key(ec.SECP256R1())
    leaf = issue_certificate(ec_key.public_key(), pki["ca_key"], "ec",  # type: ignore[arg-type]
                             issuer=pki["ca"], sip_uri="sip:ec@example.org",
                             not_before=NOW - 1, not_after=NOW + 1)
    expect(ErrorType.INVALID_CERT, verify_peer_certificate, certificate_der(leaf), pki["ca"], NOW)


@pytest.mark.parametrize("der", [b"", b"\x30\x03\x02\x01\x01", b"garbage" * 20])
def test_garbage_der_is_invalid_cert(pki, der: bytes) -> None:  # type: ignore[no-untyped-def]
    expect(ErrorType.INVALID_CERT, verify_peer_certificate, der, pki["ca"], NOW)


def test_truncated_certificate_is_invalid_cert(pki) -> None:  # type: ignore[no-untyped-def]
    der = certificate_der(pki["alice"])
    for cut in range(0, len(der), 97):
        expect(ErrorType.INVALID_CERT, verify_peer_certificate, der[:cut], pki["ca"], NOW)


def test_chash_rfc3830_6_8(pki) -> None:  # type: ignore[no-untyped-def]
    der = certificate_der(pki["alice"])
    assert cert_hash(der) == hashlib.sha1(der).digest()
    assert len(cert_hash(der, HashFunc.MD5)) == 16
    check_cert_hash(der, HashFunc.SHA1, hashlib.sha1(der).digest())
    expect(ErrorType.INVALID_CERT, check_cert_hash, der, HashFunc.SHA1, bytes(20))
    expect(ErrorType.INVALID_HA, cert_hash, der, 9)


def test_memoised_verification_still_checks_time_and_identity(pki) -> None:  # type: ignore[no-untyped-def]
    der = certificate_der(pki["alice"])
    first = verify_peer_certificate(der, pki["ca"], NOW)
    assert verify_peer_certificate(der, pki["ca"], NOW, "sip:alice@example.org") is first
    expect(ErrorType.INVALID_CERT, verify_peer_certificate, der, pki["ca"], NOW + 2 * 86400)
    expect(ErrorType.AUTH_FAILURE, verify_peer_certificate, der, pki["ca"], NOW,
           "sip:bob@example.org")
    other_ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_ca = issue_certificate(other_ca_key.public_key(), other_ca_key, "Other CA",
                                 not_before=NOW - YEAR, not_after=NOW + YEAR, is_ca=True)
    expect(ErrorType.INVALID_CERT, verify_peer_certificate, der, other_ca, NOW)
