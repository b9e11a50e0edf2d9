"""Device hand-off tokens (docs/transfer.md; HMAC-SHA256, RFC 2104) and the new
device's expectation book: codec, authentication, validity window, replay."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilityd.mobility.transfer import (
    ExpectationBook,
    HandOffToken,
    NotExpectedError,
    TokenError,
    TokenKind,
    token_key,
)
from tests.mobility.tokens import KEY, NOW, expect_token


def test_round_trip_byte_exact() -> None:
    token = expect_token().sealed(KEY)
    data = bytes(token)
    parsed = HandOffToken.parse(data)
    assert parsed == token and bytes(parsed) == data
    assert HandOffToken.open(data, KEY, receiver="pda", now=NOW) == token


def test_unsealed_token_has_no_wire_form() -> None:
    with pytest.raises(ValueError, match="unsealed"):
        bytes(expect_token())


def test_every_truncation_is_a_token_error() -> None:
    data = bytes(expect_token().sealed(KEY))
    for cut in range(len(data)):
        with pytest.raises(TokenError):
            HandOffToken.open(data[:cut], KEY, receiver="pda", now=NOW)
    with pytest.raises(TokenError):
        HandOffToken.open(data + b"\0", KEY, receiver="pda", now=NOW)


@pytest.mark.parametrize(("what", "kwargs", "now"), [
    ("other key", {"key": token_key(bytes(32))}, NOW),
    ("other receiver", {"receiver": "laptop"}, NOW),
    ("expired", {}, NOW + 60),
    ("from the future", {}, NOW - 31),
])
def test_refused(what: str, kwargs: dict[str, object], now: float) -> None:
    del what
    data = bytes(expect_token().sealed(KEY))
    key = kwargs.get("key", KEY)
    receiver = kwargs.get("receiver", "pda")
    with pytest.raises(TokenError):
        HandOffToken.open(data, key, receiver=receiver, now=now)  # type: ignore[arg-type]


def test_overlong_lifetime_refused() -> None:
    data = bytes(expect_token(expires=NOW + 3600).sealed(KEY))
    with pytest.raises(TokenError, match="lifetime"):
        HandOffToken.open(data, KEY, receiver="pda", now=NOW)


def test_every_bit_flip_is_refused() -> None:
    data = bytes(expect_token().sealed(KEY))
    for i in range(len(data)):
        flipped = data[:i] + bytes((data[i] ^ 0x01,)) + data[i + 1:]
        with pytest.raises(TokenError):
            HandOffToken.open(flipped, KEY, receiver="pda", now=NOW)


VALID = bytes(expect_token().sealed(KEY))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(VALID)), st.binary(max_size=40), st.integers(0, 40))
def test_only_token_errors_escape(at: int, insert: bytes, drop: int) -> None:
    """Mutated tokens (a slice replaced by random bytes): parse and verify raise only
    TokenError, whatever length fields and kinds the mutation produced."""
    data = VALID[:at] + insert + VALID[at + drop:]
    with contextlib.suppress(TokenError):
        HandOffToken.parse(data)
    with contextlib.suppress(TokenError):
        HandOffToken.open(data, KEY, receiver="pda", now=NOW)


def test_book_admits_once_and_answers() -> None:
    book = ExpectationBook("pda", KEY)
    data = bytes(expect_token().sealed(KEY))
    token, accept = book.admit(data, NOW)
    answer = HandOffToken.open(accept, KEY, receiver="laptop", now=NOW)
    assert answer.kind is TokenKind.ACCEPT and answer.nonce == token.nonce
    assert answer.body() == token.answer(TokenKind.ACCEPT).body()
    with pytest.raises(TokenError, match="replayed"):
        book.admit(data, NOW + 1)
    assert book.find("sip:alice@a.example", 0xDEADBEEF, NOW) == token
    book.consume(token)
    with pytest.raises(NotExpectedError):
        book.find("sip:alice@a.example", 0xDEADBEEF, NOW)


def test_book_refuses_other_kinds_and_forgets_expired() -> None:
    book = ExpectationBook("pda", KEY)
    with pytest.raises(TokenError):
        book.admit(bytes(expect_token(kind=TokenKind.PULL).sealed(KEY)), NOW)
    book.admit(bytes(expect_token(nonce=b"\1" * 16).sealed(KEY)), NOW)
    assert book.pending == 1
    with pytest.raises(NotExpectedError):
        book.find("sip:alice@a.example", 0xDEADBEEF, NOW + 60)
    assert book.pending == 0


def test_short_device_key_refused() -> None:
    with pytest.raises(ValueError, match="128"):
        token_key(b"short")


def test_pull_token_admitted_once() -> None:
    book = ExpectationBook("laptop", KEY)
    pull = bytes(expect_token(kind=TokenKind.PULL, sender="pda", receiver="laptop",
                              nonce=b"\2" * 16).sealed(KEY))
    assert book.admit_pull(pull, NOW).sender == "pda"
    with pytest.raises(TokenError, match="replayed"):
        book.admit_pull(pull, NOW + 1)
    expect = bytes(expect_token(receiver="laptop", nonce=b"\3" * 16).sealed(KEY))
    with pytest.raises(TokenError, match="PULL"):
        book.admit_pull(expect, NOW)
    assert book.pending == 0
