"""Digest authentication (RFC 7616) against the RFC's own vectors and our verifier."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilityd.sip.digest import (
    DigestAlgorithm,
    DigestChallenge,
    DigestClient,
    DigestCredentials,
    DigestError,
    DigestParseError,
    DigestRejected,
    DigestVerifier,
    Qop,
    compute_response,
)

RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


def make_rng(seed: int = 1) -> Callable[[int], bytes]:
    """A deterministic stand-in for os.urandom."""
    counter = itertools.count(seed)

    def rng(n: int) -> bytes:
        value = next(counter)
        return bytes((value + i) % 256 for i in range(n))

    return rng


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        # RFC 7616 §3.9.1, MD5 and SHA-256 responses.
        (DigestAlgorithm.MD5, "8ca523f5e9506fed4657c9700eebdbec"),
        (DigestAlgorithm.SHA_256,
         "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_section_3_9_1_vectors(algorithm: DigestAlgorithm, expected: str) -> None:
    response = compute_response(
        algorithm=algorithm, username="Mufasa", realm="http-auth@example.org",
        password="Circle of Life", nonce=RFC7616_NONCE, method="GET", uri="/dir/index.html",
        qop=Qop.AUTH, nc=1, cnonce=RFC7616_CNONCE,
    )
    assert response == expected


def test_rfc7616_section_3_9_1_challenge_parses() -> None:
    challenge = DigestChallenge.parse(
        'Digest\r\n realm="http-auth@example.org",\r\n qop="auth, auth-int",\r\n'
        f' algorithm=SHA-256,\r\n nonce="{RFC7616_NONCE}",\r\n opaque="{RFC7616_OPAQUE}"'
    )
    assert challenge.realm == "http-auth@example.org"
    assert challenge.algorithm is DigestAlgorithm.SHA_256
    assert challenge.qop == (Qop.AUTH, Qop.AUTH_INT)
    assert challenge.opaque == RFC7616_OPAQUE


def test_rfc7616_section_3_9_1_credentials_round_trip() -> None:
    text = (
        'Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html",'
        f' algorithm=MD5, nonce="{RFC7616_NONCE}", nc=00000001, cnonce="{RFC7616_CNONCE}",'
        f' qop=auth, response="8ca523f5e9506fed4657c9700eebdbec", opaque="{RFC7616_OPAQUE}"'
    )
    credentials = DigestCredentials.parse(text)
    assert credentials.nc == 1
    assert credentials.qop is Qop.AUTH
    assert DigestCredentials.parse(str(credentials)) == credentials
    # RFC 7616 §3.4: algorithm, qop, nc are tokens; the rest quoted.
    assert "nc=00000001" in str(credentials)
    assert "qop=auth," in str(credentials)
    assert 'response="8ca523f5e9506fed4657c9700eebdbec"' in str(credentials)


def test_rfc2617_style_without_qop_is_accepted() -> None:
    # RFC 3261 §22.4: RFC 2069 compatibility when the challenge has no qop.
    challenge = DigestChallenge.parse('Digest realm="atlanta.com", nonce="84a4cc6f"')
    assert challenge.qop == ()
    client = DigestClient("bob", "zanzibar", make_rng())
    credentials = client.authorize(challenge, "REGISTER", "sip:atlanta.com")
    assert credentials.qop is None and credentials.nc is None
    assert "qop" not in str(credentials)


@pytest.mark.parametrize("algorithm", list(DigestAlgorithm))
def test_client_and_verifier_agree(algorithm: DigestAlgorithm) -> None:
    verifier = DigestVerifier("mobilityd.test", {"alice": "s3cret"}, make_rng(7),
                              algorithm=algorithm)
    client = DigestClient("alice", "s3cret", make_rng(99))
    challenge = DigestChallenge.parse(str(verifier.challenge(now=100.0)))
    credentials = client.authorize(challenge, "REGISTER", "sip:mobilityd.test")
    parsed = DigestCredentials.parse(str(credentials))
    assert verifier.verify(parsed, "REGISTER", now=101.0) == "alice"
    # RFC 7616 §3.4 nc: the same nonce used again counts up and is accepted.
    again = client.authorize(challenge, "INVITE", "sip:bob@mobilityd.test")
    assert again.nc == 2
    assert verifier.verify(again, "INVITE", now=102.0) == "alice"


def test_verifier_rejects_replayed_nonce_count() -> None:
    verifier = DigestVerifier("r", {"alice": "pw"}, make_rng())
    client = DigestClient("alice", "pw", make_rng(5))
    credentials = client.authorize(verifier.challenge(0.0), "REGISTER", "sip:r")
    verifier.verify(credentials, "REGISTER", 1.0)
    with pytest.raises(DigestRejected, match="replayed"):
        verifier.verify(credentials, "REGISTER", 2.0)


def test_verifier_rejects_wrong_password_method_and_foreign_nonce() -> None:
    verifier = DigestVerifier("r", {"alice": "pw"}, make_rng())
    challenge = verifier.challenge(0.0)
    wrong = DigestClient("alice", "nope", make_rng()).authorize(challenge, "REGISTER", "sip:r")
    with pytest.raises(DigestRejected, match="wrong response") as info:
        verifier.verify(wrong, "REGISTER", 1.0)
    assert info.value.status == 401
    good = DigestClient("alice", "pw", make_rng()).authorize(challenge, "REGISTER", "sip:r")
    with pytest.raises(DigestRejected):
        verifier.verify(good, "INVITE", 1.0)  # A2 covers the method
    other = DigestVerifier("r", {"alice": "pw"}, make_rng(50))
    with pytest.raises(DigestRejected, match="not issued here"):
        other.verify(good, "REGISTER", 1.0)


def test_verifier_marks_expired_nonce_stale() -> None:
    verifier = DigestVerifier("r", {"alice": "pw"}, make_rng(), nonce_lifetime=30.0)
    credentials = DigestClient("alice", "pw", make_rng()).authorize(
        verifier.challenge(0.0), "REGISTER", "sip:r")
    with pytest.raises(DigestRejected) as info:
        verifier.verify(credentials, "REGISTER", 31.0)
    assert info.value.stale
    assert "stale=true" in str(verifier.challenge(31.0, stale=True))


def test_cnonce_comes_from_injected_rng() -> None:
    challenge = DigestChallenge(realm="r", nonce="n")
    first = DigestClient("a", "b", make_rng(3)).authorize(challenge, "REGISTER", "sip:r")
    second = DigestClient("a", "b", make_rng(3)).authorize(challenge, "REGISTER", "sip:r")
    assert first == second


@pytest.mark.parametrize(
    "value",
    [
        'Basic realm="x"',
        'Digest realm="x"',  # nonce missing
        'Digest realm="x", nonce="y", algorithm=SHA-512-256',
        'Digest realm="x", realm="y", nonce="z"',
        'Digest realm="x, nonce="y"',
        'Digest realm="x", nonce="y", qop="auth-conf"',
        "Digest " + "a" * 5000,
    ],
)
def test_bad_challenges_raise_typed_error(value: str) -> None:
    with pytest.raises(DigestParseError):
        DigestChallenge.parse(value)


@pytest.mark.parametrize(
    "value",
    [
        'Digest username="a", realm="r", nonce="n", uri="u", response="zz"',
        'Digest username="a", realm="r", nonce="n", uri="u", response="ab", qop=auth',
        'Digest username="a", realm="r", nonce="n", uri="u", response="ab", qop=auth, '
        'nc=1, cnonce="c"',
        'Digest username="a", realm="r", nonce="n", response="ab"',
    ],
)
def test_bad_credentials_raise_typed_error(value: str) -> None:
    with pytest.raises(DigestParseError) as info:
        DigestCredentials.parse(value)
    assert info.value.status == 400


@given(st.text(max_size=300))
def test_only_digest_errors_escape_the_parsers(text: str) -> None:
    for parse in (DigestChallenge.parse, DigestCredentials.parse):
        with contextlib.suppress(DigestError):
            parse("Digest " + text)
