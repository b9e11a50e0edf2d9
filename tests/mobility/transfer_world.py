"""In-memory parties of a transfer: Alice, the user's laptop and PDA, and Mallory.

A real PSK (or PKE) MIKEY call between Alice and the laptop keys real libsrtp
sessions (pylibsrtp); the transfer engines of mobilityd.mobility.transfer run between
them with a hand-advanced clock. Media is real SRTP bytes passed by hand, so index
histories, ROCs and auth failures are those of libsrtp.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.media.keying import sessions_for_call
from mobilityd.media.rtp import build_rtp
from mobilityd.media.srtp import SrtpSession
from mobilityd.mikey.context import CryptoContext
from mobilityd.mikey.payloads import SrtpCsEntry
from mobilityd.mikey.replay import ReplayCache
from mobilityd.mikey.session import PkeInitiator, PskInitiator, Responder, Rng
from mobilityd.mobility.transfer import (
    ExpectationBook,
    Referrer,
    TransferAccepted,
    TransferOffer,
    TransferTaken,
    add_receive_streams,
    offer_transfer,
    open_transfer_sessions,
    take_transfer,
    token_key,
)
from mobilityd.mobility.transfer.events import TargetConfirmed, TransferSucceeded
from tests.call.credentials import NOW, credentials

ALICE = "sip:alice@a.example"
BOB = "sip:bob@b.example"
MALLORY = "sip:mallory@m.example"
ALICE_ID = sip_identity(ALICE)
BOB_ID = sip_identity(BOB)
PSK = bytes(range(32))
DEVICE_KEY = bytes(range(100, 132))
DEVICES = {"laptop": f"{BOB};gr=laptop", "pda": f"{BOB};gr=pda"}

__all__ = ["ALICE", "BOB", "NOW", "Device", "World", "seeded_rng"]


def seeded_rng(seed: int) -> Rng:
    gen = random.Random(seed)
    return gen.randbytes


@dataclass(eq=False)
class Sender:
    """A paced RTP source: one SSRC, sequence numbers counting (and wrapping) up."""

    ssrc: int
    seq: int
    ts: int = 0

    def next_packet(self) -> bytes:
        packet = build_rtp(0, self.seq, self.ts, self.ssrc, b"\xd5" * 160)
        self.seq += 1
        self.ts += 160
        return packet


@dataclass(eq=False)
class Device:
    """One of the user's devices: its transfer book and, when in the call, SRTP."""

    name: str
    book: ExpectationBook
    responder: Responder
    tx: SrtpSession | None = None
    rx: SrtpSession | None = None
    sender: Sender | None = None
    received: list[bytes] = field(default_factory=list)

    def send(self) -> bytes:
        assert self.tx is not None and self.sender is not None
        return self.tx.protect(self.sender.next_packet())

    def receive(self, srtp: bytes) -> bytes:
        assert self.rx is not None
        rtp = self.rx.unprotect(srtp)
        self.received.append(rtp)
        return rtp

    def auth_failures(self) -> int:
        if self.rx is None:
            return 0
        return sum(self.rx.counters(s).auth_failures for s in self.rx.ssrcs) + \
            self.rx.unknown_ssrc_auth_failures


@dataclass(eq=False)
class World:
    """Alice in a secure call with the user's laptop; the PDA idle (module docstring)."""

    method: KeyMethod = KeyMethod.PSK
    alice_first_seq: int = 65_500
    seed: int = 1
    now: float = NOW
    rng: Rng = field(init=False)
    alice_config: KeyingConfig = field(init=False)
    alice_context: CryptoContext = field(init=False)
    alice_tx: SrtpSession = field(init=False)
    alice_rx: SrtpSession = field(init=False)
    alice_sender: Sender = field(init=False)
    alice_used_peer_ssrcs: set[int] = field(default_factory=set)
    devices: dict[str, Device] = field(default_factory=dict)
    holder: str = "laptop"
    #: every device-side sending session ever used (for the (SSRC, index) checks)
    user_tx_sessions: list[SrtpSession] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = seeded_rng(self.seed)
        for name in DEVICES:
            self.devices[name] = Device(name, ExpectationBook(name, token_key(DEVICE_KEY)),
                                        self.user_responder())
        if self.method is KeyMethod.PSK:
            peer = PeerKeying(KeyMethod.PSK, psk=PSK)
            self.alice_config = KeyingConfig(peers={BOB_ID: peer}, replay_cache=ReplayCache())
        else:
            peer = PeerKeying(KeyMethod.PKE, certificate=credentials(BOB).certificate)
            self.alice_config = KeyingConfig(peers={BOB_ID: peer}, own=credentials(ALICE),
                                             replay_cache=ReplayCache())
        self._setup_call()

    def user_responder(self) -> Responder:
        """The user's MIKEY credentials towards Alice, as every device holds them."""
        return Responder(local_id=BOB_ID, psk=PSK, pk=credentials(BOB), peer_id=ALICE_ID,
                         replay_cache=ReplayCache())

    def _setup_call(self) -> None:
        """The laptop calls Alice (RFC 3830 §3.1 / §3.2 initial exchange)."""
        laptop_ssrc = int.from_bytes(self.rng(4), "big") | 1
        alice_ssrc = int.from_bytes(self.rng(4), "big") | 2
        cs_map = [SrtpCsEntry(0, laptop_ssrc, 0), SrtpCsEntry(0, alice_ssrc, 0)]
        initiator: PskInitiator | PkeInitiator
        if self.method is KeyMethod.PSK:
            initiator = PskInitiator(psk=PSK, local_id=BOB_ID, peer_id=ALICE_ID, cs_map=cs_map)
        else:
            initiator = PkeInitiator(credentials=credentials(BOB), local_id=BOB_ID,
                                     peer_id=ALICE_ID,
                                     peer_certificate=credentials(ALICE).certificate,
                                     cs_map=cs_map)
        offer = initiator.start(self.now, self.rng)
        alice = Responder(local_id=ALICE_ID, psk=PSK, pk=credentials(ALICE), peer_id=BOB_ID,
                          replay_cache=ReplayCache())
        done = alice.receive(offer, self.now)
        assert done.reply is not None
        laptop_context = initiator.receive_response(done.reply, self.now)
        self.alice_context = done.context
        self.alice_tx, self.alice_rx = sessions_for_call(
            done.context, [alice_ssrc], [laptop_ssrc], keep_index_history=True)
        self.alice_sender = Sender(alice_ssrc, self.alice_first_seq)
        self.alice_used_peer_ssrcs.add(laptop_ssrc)
        laptop = self.devices["laptop"]
        laptop.tx, laptop.rx = sessions_for_call(
            laptop_context, [laptop_ssrc], [alice_ssrc], keep_index_history=True)
        laptop.sender = Sender(laptop_ssrc, 65_530)
        self.user_tx_sessions.append(laptop.tx)

    # -- media ------------------------------------------------------------------------

    def alice_send(self) -> bytes:
        return self.alice_tx.protect(self.alice_sender.next_packet())

    def exchange(self, packets: int, to: tuple[str, ...] | None = None,
                 loss: random.Random | None = None, loss_rate: float = 0.0) -> None:
        """``packets`` of media both ways between Alice and the devices in ``to``."""
        targets = to or (self.holder,)
        for _ in range(packets):
            srtp = self.alice_send()
            for name in targets:
                if loss is None or loss.random() >= loss_rate:
                    self.devices[name].receive(srtp)
            for name in targets:
                back = self.devices[name].send()
                if loss is None or loss.random() >= loss_rate:
                    self.alice_rx.unprotect(back)

    def alice_auth_failures(self) -> int:
        rx = self.alice_rx
        return sum(rx.counters(s).auth_failures for s in rx.ssrcs) + rx.unknown_ssrc_auth_failures

    # -- the transfer, step by step -----------------------------------------------------

    def referrer(self, source: str, target: str) -> Referrer:
        device = self.devices[source]
        assert device.sender is not None
        return Referrer(
            call_id="call-1", own_device=source, device=target, key=token_key(DEVICE_KEY),
            refer_to=DEVICES[target], referred_by=BOB, correspondent=ALICE,
            csb_id=self.alice_context.csb_id,
            correspondent_ssrcs=(self.alice_sender.ssrc,),
            released_ssrcs=tuple(sorted(self.alice_used_peer_ssrcs)),
        )

    def announce(self, referrer: Referrer) -> TargetConfirmed:
        """Steps 1-2: EXPECT token to the target, its ACCEPT back."""
        expect = referrer.start(self.now, self.rng)
        _, accept = self.devices[referrer.device].book.admit(expect, self.now)
        (event,) = referrer.receive_accept(accept, self.now)
        assert isinstance(event, TargetConfirmed)
        return event

    def alice_offer(self) -> tuple[TransferOffer, bytes]:
        """Step 3 at Alice: the transfer I_MESSAGE (REFER accepted)."""
        offer = offer_transfer(
            self.alice_context, self.alice_config,
            own_rocs={self.alice_sender.ssrc: self.alice_tx.get_roc(self.alice_sender.ssrc)},
            used_ssrcs=self.alice_used_peer_ssrcs, now=self.now, rng=self.rng)
        return offer, offer.message

    def target_takes(self, target: str, message: bytes) -> TransferTaken:
        device = self.devices[target]
        return take_transfer(device.book, device.responder, ALICE, message, self.now)

    def complete(self, target: str, taken: TransferTaken, accepted: TransferAccepted) -> None:
        """Step 4-5: keys in place at both ends; the old device keeps its sessions until
        the BYE (the caller decides when media stops going to it)."""
        device = self.devices[target]
        device.tx, device.rx = open_transfer_sessions(taken, keep_index_history=True)
        self.user_tx_sessions.append(device.tx)
        (local,) = taken.local_ssrcs
        device.sender = Sender(local, int.from_bytes(self.rng(2), "big") & 0x7FFF)
        add_receive_streams(self.alice_rx, accepted)
        self.alice_used_peer_ssrcs.update(accepted.ssrc_renames.values())

    def move(self, source: str, target: str, *, overlap: int = 5) -> None:
        """A whole successful move (used by the scenario tests)."""
        referrer = self.referrer(source, target)
        self.announce(referrer)
        assert referrer.refer_answered(202, self.now) == []
        offer, message = self.alice_offer()
        taken = self.target_takes(target, message)
        assert taken.reply is not None
        accepted = offer.receive_response(taken.reply, self.now)
        self.complete(target, taken, accepted)
        self.exchange(overlap, to=(source, target))  # media to both during the switch
        (event,) = referrer.progress_notified(200, self.now)
        assert isinstance(event, TransferSucceeded)
        self.holder = target
