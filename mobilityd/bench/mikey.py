"""``python -m mobilityd.bench mikey [--json] [--quick]``: MIKEY exchange cost (RFC 3830).

For each exchange the median wall time of the whole sans-I/O engine run (both sides,
in memory) is printed next to the median of the bare cryptographic primitives that
exchange cannot avoid, timed alternately with it in the same loop (so both see the same
machine load) — the overhead ratio shows how close the engine is to the limit.
Primitives are the ones the engine uses: OpenSSL through ``cryptography`` (AES, RSA,
DH) and ``hmac.digest`` (OpenSSL HMAC-SHA-1).

* ``psk_exchange``: I_MESSAGE build, responder verify + V answer, initiator checks V.
  Crypto: 2x three §4.1.4 key derivations (12 HMAC), 2 AES-CM runs, MAC and V
  (4 HMAC).
* ``psk_update``: update build + verify (§4.5), no new TGK. Crypto: 2 HMAC.
* ``dh_exchange`` (OAKLEY 5, RSA-2048): with key pairs generated inline, and
  ``_precomputed`` from pools filled beforehand. Crypto: 2 DH key generations (not in
  the precomputed baseline), 2 DH computations, 2 RSA signatures, 4 RSA verifications
  (2 messages, 2 certificates).
* ``codec_*``: the codec alone (no crypto, no baseline): parse and build of the
  I_MESSAGE of ``psk_exchange`` (HDR, T, RAND, IDi, IDr, SP, KEMAC, §3.1) and parse of
  a PSK update (§4.5), medians of single operations.
* ``pke_exchange`` (RSA-2048): crypto: 2 certificate verifications, RSA encryption and
  decryption of the envelope key, signature and its verification, the PSK-like HMACs.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mobilityd.mikey.certs import issue_certificate
from mobilityd.mikey.constants import DhGroup
from mobilityd.mikey.dh import DhKeyPool, _ffdh_allowed, _parameter_numbers
from mobilityd.mikey.message import MikeyMessage, encode_message
from mobilityd.mikey.payloads import SrtpCsEntry
from mobilityd.mikey.session import (
    DhInitiator,
    PkCredentials,
    PkeInitiator,
    PskInitiator,
    Responder,
)

ALICE = b"sip:alice@example.org"
BOB = b"sip:bob@example.org"
CS_MAP = (SrtpCsEntry(0, 0x11111111, 0), SrtpCsEntry(0, 0x22222222, 0))
PSK = bytes(range(32))


class Clock:
    """A hand-advanced clock: every exchange gets a new timestamp (replay cache)."""

    def __init__(self) -> None:
        self.now = 1_795_000_000.0

    def tick(self) -> float:
        self.now += 0.001
        return self.now


def paired(
    name: str, engine: Callable[[], object], crypto: Callable[[], object], rounds: int
) -> dict[str, float]:
    """Medians of ``engine`` and ``crypto`` timed alternately, so both see the same load.

    ``NAME_ms`` / ``NAME_crypto_ms`` are wall-clock medians; ``NAME_cpu_ms`` /
    ``NAME_crypto_cpu_ms`` the process CPU time, which a shared, loaded machine
    inflates much less (everything, OpenSSL included, runs in this process).
    """
    engine()
    crypto()
    samples: dict[str, list[float]] = {"": [], "_crypto": [], "_cpu": [], "_crypto_cpu": []}
    wall, cpu = time.perf_counter, time.process_time
    for _ in range(rounds):
        w0, c0 = wall(), cpu()
        engine()
        w1, c1 = wall(), cpu()
        crypto()
        w2, c2 = wall(), cpu()
        samples[""].append(w1 - w0)
        samples["_cpu"].append(c1 - c0)
        samples["_crypto"].append(w2 - w1)
        samples["_crypto_cpu"].append(c2 - c1)
    return {
        f"{name}{suffix}_ms": statistics.median(values) * 1000.0
        for suffix, values in samples.items()
    }


def single(name: str, operation: Callable[[], object], rounds: int) -> dict[str, float]:
    """``NAME_ms``: the median wall time of ``operation`` (no baseline: pure Python)."""
    operation()
    wall = time.perf_counter
    samples = []
    for _ in range(rounds):
        start = wall()
        operation()
        samples.append(wall() - start)
    return {f"{name}_ms": statistics.median(samples) * 1000.0}


def bench_codec(rounds: int, clock: Clock) -> dict[str, float]:
    now = clock.tick()
    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP)
    i_message = initiator.start(now, os.urandom)
    answer = Responder(local_id=BOB, psk=PSK).receive(i_message, now)
    assert answer.reply is not None
    update = initiator.receive_response(answer.reply, now).build_update(clock.tick())
    parsed = MikeyMessage.parse(i_message)
    return {
        **single("codec_parse_i_message", lambda: MikeyMessage.parse(i_message), rounds),
        **single("codec_build_i_message",
                 lambda: encode_message(parsed.header, parsed.payloads), rounds),
        **single("codec_parse_update", lambda: MikeyMessage.parse(update), rounds),
    }


def _pki() -> tuple[PkCredentials, PkCredentials]:
    now = Clock().now
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = issue_certificate(ca_key.public_key(), ca_key, "CA", not_before=now - 1e6,
                           not_after=now + 1e7, is_ca=True)
    creds = []
    for serial, uri in enumerate((ALICE, BOB), start=2):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = issue_certificate(key.public_key(), ca_key, uri.decode(), issuer=ca,
                                 sip_uri=uri.decode(), not_before=now - 1e6,
                                 not_after=now + 1e7, serial=serial)
        creds.append(PkCredentials(key, cert, ca))
    return creds[0], creds[1]


def bench_psk(rounds: int, clock: Clock) -> dict[str, float]:
    responder = Responder(local_id=BOB, psk=PSK)

    def exchange() -> None:
        now = clock.tick()
        initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP)
        answer = responder.receive(initiator.start(now, os.urandom), now)
        assert answer.reply is not None
        initiator.receive_response(answer.reply, now)

    message = bytes(90)
    key16, key32 = os.urandom(16), os.urandom(32)
    iv = os.urandom(16)

    def crypto() -> None:
        os.urandom(4), os.urandom(16), os.urandom(16)
        for _ in range(12):  # 2 sides x 3 keys x 2 HMAC (A_1, output)
            hmac.digest(key32, message[:25], "sha1")
        for _ in range(2):
            enc = Cipher(algorithms.AES(key16), modes.CTR(iv)).encryptor()
            enc.update(message[:20])
            enc.finalize()
        for _ in range(4):  # MAC, MAC check, V, V check
            hmac.digest(key32, message, "sha1")

    now = clock.tick()
    initiator = PskInitiator(psk=PSK, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP)
    answer = responder.receive(initiator.start(now, os.urandom), now)
    assert answer.reply is not None
    alice = initiator.receive_response(answer.reply, now)
    state = {"bob": answer.context}

    def update() -> None:
        t = clock.tick()
        state["bob"] = state["bob"].verify_update(alice.build_update(t), t)

    def update_crypto() -> None:
        hmac.digest(key32, message, "sha1")
        hmac.digest(key32, message, "sha1")

    return {
        **paired("psk_exchange", exchange, crypto, rounds),
        **paired("psk_update", update, update_crypto, rounds),
    }


def _rsa_ops(alice: PkCredentials, bob: PkCredentials, data: bytes) -> None:
    """2 signatures, 4 verifications (2 messages, 2 certificates)."""
    for signer, verifier in ((alice, bob), (bob, alice)):
        sig = signer.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        signer.private_key.public_key().verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        verifier.certificate.verify_directly_issued_by(verifier.ca)


def bench_dh(rounds: int, clock: Clock, alice: PkCredentials, bob: PkCredentials
             ) -> dict[str, float]:
    def exchange(pool_i: DhKeyPool | None, pool_r: DhKeyPool | None) -> None:
        now = clock.tick()
        initiator = DhInitiator(credentials=alice, local_id=ALICE, peer_id=BOB, cs_map=CS_MAP,
                                key_pool=pool_i)
        responder = Responder(local_id=BOB, pk=bob, dh_pool=pool_r)
        answer = responder.receive(initiator.start(now, os.urandom), now, os.urandom)
        assert answer.reply is not None
        initiator.receive_response(answer.reply, now)

    pool_i = DhKeyPool(DhGroup.OAKLEY_5, target_size=rounds + 3)
    pool_r = DhKeyPool(DhGroup.OAKLEY_5, target_size=rounds + 3)
    pool_i.fill(os.urandom)
    pool_r.fill(os.urandom)
    data = bytes(700)
    with _ffdh_allowed():
        params = _parameter_numbers(DhGroup.OAKLEY_5).parameters()
        pre_i, pre_r = params.generate_private_key(), params.generate_private_key()

    def crypto(keygen: bool) -> None:
        with _ffdh_allowed():
            ki = params.generate_private_key() if keygen else pre_i
            kr = params.generate_private_key() if keygen else pre_r
            ki.exchange(kr.public_key())
            kr.exchange(ki.public_key())
        _rsa_ops(alice, bob, data)

    return {
        **paired("dh_exchange", lambda: exchange(None, None), lambda: crypto(True), rounds),
        **paired(
            "dh_exchange_precomputed",
            lambda: exchange(pool_i, pool_r),
            lambda: crypto(False),
            rounds,
        ),
    }


def bench_pke(rounds: int, clock: Clock, alice: PkCredentials, bob: PkCredentials
              ) -> dict[str, float]:
    def exchange() -> None:
        now = clock.tick()
        initiator = PkeInitiator(credentials=alice, local_id=ALICE, peer_id=BOB,
                                 peer_certificate=bob.certificate, cs_map=CS_MAP)
        answer = Responder(local_id=BOB, pk=bob).receive(initiator.start(now, os.urandom), now)
        assert answer.reply is not None
        initiator.receive_response(answer.reply, now)

    data = bytes(1000)
    key32 = os.urandom(32)

    def crypto() -> None:
        env = bob.certificate.public_key().encrypt(  # type: ignore[union-attr]
            key32, padding.PKCS1v15()
        )
        bob.private_key.decrypt(env, padding.PKCS1v15())
        sig = alice.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        alice.private_key.public_key().verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        bob.certificate.verify_directly_issued_by(bob.ca)
        alice.certificate.verify_directly_issued_by(alice.ca)
        for _ in range(16):
            hmac.digest(key32, data[:100], "sha1")

    return paired("pke_exchange", exchange, crypto, rounds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mobilityd.bench mikey")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (< 60 s)")
    args = parser.parse_args(argv)
    fast, slow = (300, 20) if args.quick else (3000, 100)
    clock = Clock()
    alice, bob = _pki()
    timings: dict[str, float] = {
        **bench_psk(fast, clock),
        **bench_codec(fast, clock),
        **bench_dh(slow, clock, alice, bob),
        **bench_pke(slow, clock, alice, bob),
    }
    result: dict[str, float | int | str] = dict(timings)
    for name in ("psk_exchange", "psk_update", "dh_exchange", "dh_exchange_precomputed",
                 "pke_exchange"):
        result[f"{name}_overhead_ratio"] = round(
            timings[f"{name}_ms"] / timings[f"{name}_crypto_ms"], 2
        )
        result[f"{name}_cpu_overhead_ratio"] = round(
            timings[f"{name}_cpu_ms"] / max(timings[f"{name}_crypto_cpu_ms"], 1e-9), 2
        )
    result["rounds_fast"] = fast
    result["rounds_slow"] = slow
    result["unit"] = "ms (median)"
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        for key, value in sorted(result.items()):
            print(f"{key:40} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
