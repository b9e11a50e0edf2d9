"""The next move's RFC 3830 §4.5 update built ahead (``UpdateInAdvance``, issue 5):
sent only while it fits the call's context and is fresh, once, and the peer verifies
such a move exactly like one built at move time; ``MoveContexts`` keeps it (and the
call's parsed SDPs) ready for the daemon's moves."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from mobilityd.mikey.constants import ErrorType
from mobilityd.mikey.context import CryptoContext
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.timestamps import timestamp_payload
from mobilityd.mobility.agent_roaming import MoveContexts
from mobilityd.mobility.move import (
    PREPARED_UPDATE_MAX_AGE,
    MediaAddress,
    MoveUsageError,
    UpdateInAdvance,
    move_offer,
)
from mobilityd.mobility.peer import MoveRefused, verify_move
from mobilityd.mobility.roaming import CallMover, RoamingCall
from mobilityd.service.bus import EventBus
from mobilityd.service.calls_roaming import RoamingCallManager, _Tracked
from mobilityd.service.config import load_config
from mobilityd.service.logging import FIELDS_ATTR
from mobilityd.sip.errors import SipError
from tests.mobility.moving import NOW, bob_sdp, dh_call, pki, psk_call, seeded
from tests.service.conftest import minimal_toml, write_secret

NEW = MediaAddress("10.4.0.2", 40000, 40001)


def test_a_prepared_update_is_what_the_move_sends_and_the_peer_verifies_it() -> None:
    bob, alice = psk_call()
    ahead = UpdateInAdvance()
    ahead.prepare(bob, NOW, seeded(3))
    assert ahead.is_ready(bob, NOW + 5)
    prepared = ahead.take(bob, NOW + 20)  # the move comes 20 s later
    assert prepared is not None
    offer = move_offer(bob_sdp(), bob, NEW, NOW + 20, prepared=prepared)
    assert offer.update == prepared.message and offer.context is prepared.context
    verified = verify_move(offer.body, alice, NOW + 20, previous=bob_sdp())
    assert verified.media_hint == ("10.4.0.2", 40000)
    assert verified.context.tgk == bob.tgk


def test_a_prepared_signed_update_of_a_dh_call_verifies() -> None:
    bob, alice = dh_call(pki())
    ahead = UpdateInAdvance()
    ahead.prepare(bob, NOW, seeded(4))
    offer = move_offer(bob_sdp(), bob, NEW, NOW + 1, prepared=ahead.take(bob, NOW + 1))
    assert verify_move(offer.body, alice, NOW + 1, previous=bob_sdp()).context.tgk == bob.tgk


def test_it_is_handed_out_once_and_the_next_move_builds_a_later_one() -> None:
    bob, alice = psk_call()
    ahead = UpdateInAdvance()
    ahead.prepare(bob, NOW, seeded(5))
    first = move_offer(bob_sdp(), bob, NEW, NOW + 1, prepared=ahead.take(bob, NOW + 1))
    assert ahead.take(bob, NOW + 1) is None  # once
    assert not ahead.is_ready(first.context, NOW + 1)
    # the next move, before anything was prepared again: built at move time
    second = move_offer(first.sdp, first.context, MediaAddress("10.2.0.2", 40000, 40001),
                        NOW + 2, seeded(6))
    assert first.context.last_timestamp < second.context.last_timestamp
    peer = verify_move(first.body, alice, NOW + 1, previous=bob_sdp()).context
    verify_move(second.body, peer, NOW + 2, previous=first.sdp)


def test_not_sent_for_another_context() -> None:
    """The call's context changed since (an update sent or verified): the prepared one
    lacks that state (timestamp, replay cache), so it is dropped."""
    bob, _ = psk_call()
    ahead = UpdateInAdvance()
    ahead.prepare(bob, NOW, seeded(7))
    moved = move_offer(bob_sdp(), bob, NEW, NOW + 1, seeded(8)).context
    assert not ahead.is_ready(moved, NOW + 1)
    assert ahead.take(moved, NOW + 1) is None
    assert ahead.take(bob, NOW + 1) is None  # and it is gone


@pytest.mark.parametrize("age", [PREPARED_UPDATE_MAX_AGE + 0.001, -1.0])
def test_not_sent_when_too_old_or_from_the_future(age: float) -> None:
    bob, _ = psk_call()
    ahead = UpdateInAdvance()
    ahead.prepare(bob, NOW, seeded(9))
    assert not ahead.is_ready(bob, NOW + age)
    assert ahead.take(bob, NOW + age) is None


def test_ready_only_for_half_its_allowed_age() -> None:
    bob, _ = psk_call()
    ahead = UpdateInAdvance(max_age=10)
    assert not ahead.is_ready(bob, NOW)
    ahead.prepare(bob, NOW, seeded(10))
    assert ahead.is_ready(bob, NOW + 5)
    assert not ahead.is_ready(bob, NOW + 5.5)  # refreshed from here on
    assert ahead.take(bob, NOW + 9) is not None  # but still sent if the move comes first


def test_keep_ready_builds_only_when_nothing_ready_fits() -> None:
    bob, _ = psk_call()
    ahead = UpdateInAdvance(max_age=10)
    ahead.keep_ready(bob, NOW + 0.5, seeded(19))
    first = ahead.take(bob, NOW + 1)
    ahead.keep_ready(bob, NOW + 1, seeded(20))
    ahead.keep_ready(bob, NOW + 2, seeded(21))  # still ready: not built again
    second = ahead.take(bob, NOW + 2)
    assert first is not None and second is not None
    assert first.ts == timestamp_payload(NOW + 0.5).value
    assert second.ts == timestamp_payload(NOW + 1).value  # built at NOW + 1, once
    ahead.keep_ready(bob, NOW + 3, seeded(22))
    ahead.keep_ready(bob, NOW + 9, seeded(23))  # over half its age: built again
    third = ahead.take(bob, NOW + 9)
    assert third is not None and third.ts == timestamp_payload(NOW + 9).value


def test_a_non_positive_age_is_a_usage_error() -> None:
    with pytest.raises(MoveUsageError, match="max_age"):
        UpdateInAdvance(max_age=0)


def test_a_replayed_prepared_move_is_refused() -> None:
    bob, alice = psk_call()
    ahead = UpdateInAdvance()
    ahead.prepare(bob, NOW, seeded(11))
    offer = move_offer(bob_sdp(), bob, NEW, NOW + 1, prepared=ahead.take(bob, NOW + 1))
    peer = verify_move(offer.body, alice, NOW + 1, previous=bob_sdp()).context
    with pytest.raises(MoveRefused):
        verify_move(offer.body, peer, NOW + 2, previous=offer.sdp)


@dataclass
class _Call:
    """The fields of a SecureCall that MoveContexts reads."""

    call_id: str
    context: CryptoContext | None
    local_sdp: bytes
    remote_sdp: bytes


def test_move_contexts_keep_the_update_and_the_sdps_ready() -> None:
    bob, alice = psk_call()
    local = bytes(bob_sdp())
    call = _Call("c1", bob, local, b"")
    contexts = MoveContexts()
    assert contexts.take_update("c1", bob, NOW) is None  # nothing prepared yet
    contexts.keep_ready(call, NOW, seeded(12))  # type: ignore[arg-type]
    parsed = contexts.parsed_sdp("c1", "local", local)
    assert parsed is contexts.parsed_sdp("c1", "local", bytes(local))  # same bytes: kept
    assert parsed is not contexts.parsed_sdp("c1", "local", bytes(bob_sdp(version=2)))
    prepared = contexts.take_update("c1", bob, NOW + 3)
    assert prepared is not None
    offer = move_offer(bob_sdp(), bob, NEW, NOW + 3, prepared=prepared)
    verify_move(offer.body, alice, NOW + 3, previous=bob_sdp())
    contexts.set("c1", offer.context)
    contexts.keep_ready(call, NOW + 4, seeded(13))  # type: ignore[arg-type]
    assert contexts.take_update("c1", bob, NOW + 4) is None  # built for the new context
    contexts.keep_ready(call, NOW + 4, seeded(14))  # type: ignore[arg-type]
    assert contexts.take_update("c1", offer.context, NOW + 4) is not None
    contexts.keep_ready(call, NOW + 5, seeded(15))  # type: ignore[arg-type]
    contexts.forget("c1")
    assert contexts.take_update("c1", offer.context, NOW + 5) is None


def test_move_contexts_skip_an_unparseable_sdp_until_the_move_says_so() -> None:
    bob, _ = psk_call()
    contexts = MoveContexts()
    call = _Call("c2", bob, b"not sdp", b"")
    contexts.keep_ready(call, NOW, seeded(16))  # type: ignore[arg-type]
    assert contexts.take_update("c2", bob, NOW) is not None  # the update is still built
    with pytest.raises(SipError):
        contexts.parsed_sdp("c2", "local", b"not sdp")


class _FailingContext:
    """A context whose update cannot be built (e.g. a signing key that went away)."""

    def prepare_update(self, now: float, **_: object) -> object:
        raise MikeyError("no signing key", ErrorType.UNSPECIFIED)


def test_the_daemon_keeps_a_call_ready_and_a_failure_only_logs(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """What the daemon's per-call sampler runs every second
    (``RoamingCallManager._keep_move_ready``): the update is built ahead; a call whose
    update cannot be built is reported and the sampler goes on."""
    write_secret(tmp_path / "alice.psk")
    config = tmp_path / "mobilityd.toml"
    config.write_text(minimal_toml(tmp_path / "control.sock"))
    manager = RoamingCallManager(load_config(config), EventBus())
    bob, _ = psk_call()
    call = _Call("c3", bob, bytes(bob_sdp()), b"")
    manager._keep_move_ready(_Tracked(call, (0, 0)), NOW)  # type: ignore[arg-type]
    assert manager._contexts.take_update("c3", bob, NOW + 1) is not None
    broken = _Tracked(_Call("c4", _FailingContext(), b"", b""), (0, 0))  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        for second in range(3):  # the daemon checks every second
            manager._keep_move_ready(broken, NOW + second)
    failures = [r for r in caplog.records if r.getMessage() == "call.move_prepare_failed"]
    assert len(failures) == 1  # logged once, not every second
    fields = getattr(failures[0], FIELDS_ATTR)
    assert fields["call"] == "c4" and "no signing key" in fields["error"]


async def test_a_call_mover_keeps_the_next_update_ready_and_survives_a_failure(
        caplog: pytest.LogCaptureFixture) -> None:
    """``CallMover`` (the test parties' mover): built at start, built again for a new
    context at the next check, a failure logged and the checks go on; ``close`` stops."""
    bob, _ = psk_call()
    clock = [NOW]
    call = RoamingCall("c5", sip=None, media=None, context=bob,  # type: ignore[arg-type]
                       local_sdp=bob_sdp())
    mover = CallMover(call, wall_clock=lambda: clock[0], rng=seeded(17))
    await asyncio.sleep(0)  # the first check runs at once
    assert mover.ahead.is_ready(bob, NOW)
    moved = move_offer(bob_sdp(), bob, NEW, NOW + 1, seeded(18)).context
    call.context = moved
    clock[0] = NOW + 1
    mover._keep_update_ready()
    assert mover.ahead.is_ready(moved, NOW + 1)
    call.context = _FailingContext()  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING):
        mover._keep_update_ready()
        mover._keep_update_ready()
    assert caplog.text.count("not prepared") == 1  # once, not at every check
    assert "no signing key" in caplog.text
    assert mover._ahead_timer is not None  # the checks go on
    mover.close()
    assert mover._ahead_timer is None


def test_keep_ready_reports_a_failure_once_until_it_builds_again() -> None:
    bob, _ = psk_call()
    ahead = UpdateInAdvance()
    failing = _FailingContext()
    first = ahead.keep_ready(failing, NOW)  # type: ignore[arg-type]
    assert first is not None and "no signing key" in first
    assert ahead.keep_ready(failing, NOW + 1) is None  # type: ignore[arg-type]
    assert ahead.keep_ready(bob, NOW + 2, seeded(24)) is None  # built
    assert ahead.keep_ready(failing, NOW + 3) == first  # type: ignore[arg-type]
