"""Diffie-Hellman groups, policy and key-pair pool (RFC 3830 §3.3, §4.2.7, §6.4)."""

from __future__ import annotations

import hashlib

import pytest

from mobilityd.mikey.constants import DhGroup, ErrorType
from mobilityd.mikey.dh import (
    DhKeyPool,
    DhPolicy,
    check_group,
    compute_tgk,
    generate_key_pair,
    group_prime,
)
from mobilityd.mikey.errors import MikeyError


def counter_rng(seed: bytes):  # type: ignore[no-untyped-def]
    """Deterministic test randomness: SHA-256 in counter mode."""
    state = {"n": 0}

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            state["n"] += 1
            out += hashlib.sha256(seed + state["n"].to_bytes(8, "big")).digest()
        return out[:n]

    return rng


def test_group_primes_match_their_rfc_formulas() -> None:
    """RFC 3526 §2 / RFC 2412 E.1, E.2: 64 one-bits at both ends, known decimal digits."""
    sizes = ((DhGroup.OAKLEY_5, 1536), (DhGroup.OAKLEY_1, 768), (DhGroup.OAKLEY_2, 1024))
    for group, bits in sizes:
        p = group_prime(group)
        assert p.bit_length() == bits
        assert p >> (bits - 64) == (1 << 64) - 1  # leading 64 one-bits
        assert p & ((1 << 64) - 1) == (1 << 64) - 1  # trailing 64 one-bits
    assert str(group_prime(DhGroup.OAKLEY_1)).startswith("155251809230070893513091813125848175563")
    assert str(group_prime(DhGroup.OAKLEY_2)).endswith("467627007")


def test_key_pair_is_deterministic_under_injected_rng() -> None:
    a = generate_key_pair(DhGroup.OAKLEY_5, counter_rng(b"a"))
    b = generate_key_pair(DhGroup.OAKLEY_5, counter_rng(b"a"))
    assert a.public_value == b.public_value
    assert len(a.public_value) == 192
    x = int.from_bytes(counter_rng(b"a")(32), "big") % (group_prime(DhGroup.OAKLEY_5) - 3) + 2
    assert int.from_bytes(a.public_value, "big") == pow(2, x, group_prime(DhGroup.OAKLEY_5))


@pytest.mark.parametrize("group", list(DhGroup))
def test_both_sides_derive_the_same_tgk_rfc3830_3_3(group: DhGroup) -> None:
    i = generate_key_pair(group, counter_rng(b"i"))
    r = generate_key_pair(group, counter_rng(b"r"))
    tgk = compute_tgk(i, r.public_value)
    assert tgk == compute_tgk(r, i.public_value)
    assert len(tgk) == group_prime(group).bit_length() // 8
    xi = int.from_bytes(counter_rng(b"i")(32), "big") % (group_prime(group) - 3) + 2
    assert int.from_bytes(tgk, "big") == pow(
        int.from_bytes(r.public_value, "big"), xi, group_prime(group)
    )


def test_default_policy_refuses_weak_groups_with_invalid_dh() -> None:
    assert check_group(0) is DhGroup.OAKLEY_5
    for weak in (DhGroup.OAKLEY_1, DhGroup.OAKLEY_2):
        with pytest.raises(MikeyError) as info:
            check_group(weak)
        assert info.value.error_type is ErrorType.INVALID_DH
    assert check_group(1, DhPolicy(frozenset(DhGroup))) is DhGroup.OAKLEY_1


def test_unknown_group_is_invalid_dh() -> None:
    with pytest.raises(MikeyError) as info:
        check_group(77)
    assert info.value.error_type is ErrorType.INVALID_DH


@pytest.mark.parametrize("value", ["zero", "one", "p-1", "p", "short", "long"])
def test_bad_peer_values_are_invalid_dh(value: str) -> None:
    pair = generate_key_pair(DhGroup.OAKLEY_5, counter_rng(b"i"))
    p = group_prime(DhGroup.OAKLEY_5)
    peer = {
        "zero": bytes(192),
        "one": (1).to_bytes(192, "big"),
        "p-1": (p - 1).to_bytes(192, "big"),
        "p": p.to_bytes(192, "big"),
        "short": b"\x05" * 191,
        "long": b"\x05" * 193,
    }[value]
    with pytest.raises(MikeyError) as info:
        compute_tgk(pair, peer)
    assert info.value.error_type is ErrorType.INVALID_DH


def test_pool_fill_take_and_miss() -> None:
    pool = DhKeyPool(DhGroup.OAKLEY_5, target_size=2)
    assert pool.deficit == 2
    rng = counter_rng(b"pool")
    assert pool.fill(rng) == 2
    assert len(pool) == 2 and pool.deficit == 0
    first = pool.take(rng)
    second = pool.take(rng)
    assert first.public_value != second.public_value
    assert pool.misses == 0 and pool.deficit == 2
    pool.take(rng)  # empty: generated inline
    assert pool.misses == 1
