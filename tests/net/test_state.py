"""NetworkState and the usability filter, fed records alone (no kernel)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilityd.net.addresses import Unusable, UsabilityPolicy, unusable_reason
from mobilityd.net.errors import NetEventError
from mobilityd.net.events import (
    AddressAdded,
    AddressFamily,
    AddressFlag,
    AddressRemoved,
    AllAddressesLost,
    DefaultRouteChanged,
    LinkDown,
    LinkFlag,
    LinkUp,
)
from mobilityd.net.records import MAIN_TABLE, AddressRecord, LinkRecord, RouteRecord
from mobilityd.net.state import NetworkState, Record

V4, V6 = AddressFamily.INET, AddressFamily.INET6
UP = LinkFlag.UP | LinkFlag.RUNNING | LinkFlag.LOWER_UP
PERM = AddressFlag.PERMANENT


def addr(address: str, prefixlen: int = 24, flags: AddressFlag = PERM, *, ifindex: int = 2,
         deleted: bool = False) -> AddressRecord:
    family = V6 if ":" in address else V4
    return AddressRecord(ifindex, address, prefixlen, family, flags, deleted)


def state_with_link(ifindex: int = 2, name: str = "b0") -> NetworkState:
    state = NetworkState()
    assert state.handle(LinkRecord(ifindex, name, UP)) == [LinkUp(ifindex, name)]
    return state


@pytest.mark.parametrize(
    ("address", "flags", "reason"),
    [
        ("10.2.0.2", PERM, None),
        ("2001:db8::1", PERM, None),
        ("127.0.0.1", PERM, Unusable.LOOPBACK),
        ("::1", PERM, Unusable.LOOPBACK),
        ("169.254.3.4", PERM, Unusable.LINK_LOCAL),
        ("fe80::1", PERM, Unusable.LINK_LOCAL),
        ("2001:db8::1", PERM | AddressFlag.TENTATIVE, Unusable.TENTATIVE),
        ("2001:db8::1", PERM | AddressFlag.DADFAILED | AddressFlag.TENTATIVE,
         Unusable.DAD_FAILED),
        ("2001:db8::1", PERM | AddressFlag.DEPRECATED, Unusable.DEPRECATED),
        ("224.0.0.1", PERM, Unusable.MULTICAST),
        ("0.0.0.0", PERM, Unusable.UNSPECIFIED),
    ],
)
def test_usability_filter(address: str, flags: AddressFlag, reason: Unusable | None) -> None:
    """RFC 4862 §5.4 (tentative, dadfailed), §5.5.4 (deprecated); RFC 4291 §2.5.6."""
    family = V6 if ":" in address else V4
    assert unusable_reason(AddressRecord(2, address, 24, family, flags)) is reason


def test_link_local_allowed_by_policy() -> None:
    record = addr("fe80::1", 64)
    assert unusable_reason(record, policy=UsabilityPolicy(allow_link_local=True)) is None


def test_address_on_loopback_link_is_refused() -> None:
    assert unusable_reason(addr("10.9.9.9"), on_loopback_link=True) is Unusable.LOOPBACK


def test_added_once_dhcp_renew_is_silent() -> None:
    state = state_with_link()
    first = state.handle(addr("10.2.0.2"))
    assert first == [AddressAdded(2, "b0", "10.2.0.2", 24, V4, PERM)]
    # DHCP renew: the same address is announced again with new lifetimes.
    assert state.handle(addr("10.2.0.2", flags=AddressFlag.NONE)) == []


def test_tentative_ipv6_announced_only_after_dad() -> None:
    """RFC 4862 §5.4: a tentative address is not usable until DAD ends."""
    state = state_with_link()
    assert state.handle(addr("2001:db8::7", 64, PERM | AddressFlag.TENTATIVE)) == []
    events = state.handle(addr("2001:db8::7", 64, PERM))
    assert events == [AddressAdded(2, "b0", "2001:db8::7", 64, V6, PERM)]


def test_dad_failure_and_deprecation_remove() -> None:
    state = state_with_link()
    state.handle(addr("10.2.0.2"))
    state.handle(addr("2001:db8::7", 64))
    events = state.handle(addr("2001:db8::7", 64, PERM | AddressFlag.DEPRECATED))
    assert events == [AddressRemoved(2, "b0", "2001:db8::7", 64, V6,
                                     PERM | AddressFlag.DEPRECATED)]
    assert state.handle(addr("2001:db8::8", 64, AddressFlag.DADFAILED)) == []


def test_losing_the_only_address_is_an_event() -> None:
    state = state_with_link()
    state.handle(addr("10.2.0.2"))
    events = state.handle(addr("10.2.0.2", deleted=True))
    assert events == [AddressRemoved(2, "b0", "10.2.0.2", 24, V4, PERM), AllAddressesLost()]
    # deleting it again changes nothing
    assert state.handle(addr("10.2.0.2", deleted=True)) == []


def test_link_down_with_the_only_address_loses_all() -> None:
    state = state_with_link()
    state.handle(addr("10.2.0.2"))
    events = state.handle(LinkRecord(2, "b0", LinkFlag.UP))  # carrier lost
    assert events == [LinkDown(2, "b0"), AllAddressesLost()]
    assert state.usable_addresses() == []
    assert state.handle(LinkRecord(2, "b0", UP)) == [LinkUp(2, "b0")]
    assert [u.address for u in state.usable_addresses()] == ["10.2.0.2"]


def test_flapping_link_repeats_are_silent() -> None:
    state = state_with_link()
    assert state.handle(LinkRecord(2, "b0", UP)) == []
    assert state.handle(LinkRecord(2, "b0", LinkFlag.NONE)) == [LinkDown(2, "b0")]
    assert state.handle(LinkRecord(2, "b0", LinkFlag.NONE)) == []


def test_second_interface_keeps_addresses() -> None:
    state = state_with_link()
    state.handle(LinkRecord(3, "b1", UP))
    state.handle(addr("10.2.0.2"))
    state.handle(addr("10.4.0.2", ifindex=3))
    assert state.handle(LinkRecord(2, "b0", LinkFlag.NONE, deleted=True)) == [LinkDown(2, "b0")]
    assert [u.address for u in state.usable_addresses()] == ["10.4.0.2"]


def route(gw: str | None, oif: int, priority: int, *, deleted: bool = False,
          dst_len: int = 0, table: int = MAIN_TABLE) -> RouteRecord:
    return RouteRecord(V6 if gw and ":" in gw else V4, dst_len, table, gw, oif, priority,
                       deleted)


def test_default_route_best_metric_and_changes() -> None:
    state = state_with_link()
    state.handle(LinkRecord(3, "b1", UP))
    assert state.handle(route("10.2.0.1", 2, 600)) == [
        DefaultRouteChanged(V4, "10.2.0.1", 2, "b0")]
    assert state.handle(route("10.4.0.1", 3, 100)) == [
        DefaultRouteChanged(V4, "10.4.0.1", 3, "b1")]
    assert state.handle(route("10.2.0.1", 2, 600)) == []  # same again
    assert state.handle(route("10.9.0.1", 2, 0, dst_len=24)) == []  # not a default
    assert state.handle(route("10.9.0.1", 2, 0, table=100)) == []  # other table
    # link down flushes its IPv4 routes without RTM_DELROUTE
    events = state.handle(LinkRecord(3, "b1", LinkFlag.NONE))
    assert events == [LinkDown(3, "b1"), DefaultRouteChanged(V4, "10.2.0.1", 2, "b0")]
    assert state.handle(route("10.2.0.1", 2, 600, deleted=True)) == [
        DefaultRouteChanged(V4, None, None, None)]


def test_record_validates_itself() -> None:
    with pytest.raises(NetEventError):
        AddressRecord(2, "fd00:2::2", 64, V4, PERM)
    with pytest.raises(NetEventError):
        AddressRecord(2, "10.0.0.1", 40, V4, PERM)
    with pytest.raises(NetEventError):
        AddressRecord(2, "not-an-ip", 24, V4, PERM)


def test_event_validates_itself() -> None:
    with pytest.raises(NetEventError):
        AddressAdded(2, "b0", "10.0.0.1", 33, V4, PERM)
    with pytest.raises(NetEventError):
        AddressAdded(2, "b0", "2001:db8::1", 64, V4, PERM)
    with pytest.raises(NetEventError):
        AddressRemoved(2, "b0", "garbage", 8, V4, PERM)


def test_resync_reports_the_differences() -> None:
    state = state_with_link()
    state.handle(LinkRecord(3, "b1", UP))
    state.handle(addr("10.2.0.2"))
    state.handle(addr("10.4.0.2", ifindex=3))
    state.handle(route("10.4.0.1", 3, 100))
    # meanwhile (notifications lost): b1 went down, 10.2.0.2 was replaced by 10.3.0.7
    fresh: list[Record] = [LinkRecord(2, "b0", UP), LinkRecord(3, "b1", LinkFlag.UP),
                           addr("10.3.0.7"), addr("10.4.0.2", ifindex=3), route("10.3.0.1", 2, 0)]
    events = state.resync(fresh)
    assert events == [
        LinkDown(3, "b1"),
        AddressRemoved(2, "b0", "10.2.0.2", 24, V4, PERM),
        AddressAdded(2, "b0", "10.3.0.7", 24, V4, PERM),
        DefaultRouteChanged(V4, "10.3.0.1", 2, "b0"),
    ]
    assert [u.address for u in state.usable_addresses()] == ["10.3.0.7"]
    assert state.resync(fresh) == []


def test_resync_to_nothing_loses_all() -> None:
    state = state_with_link()
    state.handle(addr("10.2.0.2"))
    only_link: list[Record] = [LinkRecord(2, "b0", UP)]
    assert state.resync(only_link)[-1] == AllAddressesLost()


records = st.one_of(
    st.builds(LinkRecord, st.sampled_from([2, 3]), st.sampled_from(["b0", "b1"]),
              st.sampled_from([UP, LinkFlag.UP, LinkFlag.NONE]), st.booleans()),
    st.builds(addr, st.sampled_from(["10.2.0.2", "10.4.0.2", "fd00:2::2", "fe80::1"]),
              st.just(24),
              st.sampled_from([PERM, PERM | AddressFlag.TENTATIVE,
                               AddressFlag.DEPRECATED, AddressFlag.DADFAILED]),
              ifindex=st.sampled_from([2, 3]), deleted=st.booleans()),
)


def examples(default: int) -> int:
    """Hypothesis examples: ``default``, or 20x that in the slow tier (MOBILITYD_SLOW=1)."""
    return default * 20 if os.environ.get("MOBILITYD_SLOW") == "1" else default


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(records, max_size=50))
def test_state_matches_a_model(seq: list[Record]) -> None:
    """Property: the usable set equals "last record per address was usable, on a link
    that is up"; Added/Removed alternate per address; AllAddressesLost exactly when
    the last usable address went away."""
    state = NetworkState()
    links: dict[int, LinkRecord] = {}
    last: dict[tuple[int, str], AddressRecord] = {}
    announced: set[tuple[int, str]] = set()
    for record in seq:
        before = state.has_usable_address()
        events = state.handle(record)
        if isinstance(record, LinkRecord):
            links[record.ifindex] = record
            if record.deleted:  # forgotten: a link not known counts as up
                del links[record.ifindex]
                last = {k: v for k, v in last.items() if k[0] != record.ifindex}
                announced = {k for k in announced if k[0] != record.ifindex}
        elif isinstance(record, AddressRecord):
            last[(record.ifindex, record.address)] = record
        for event in events:
            if isinstance(event, AddressAdded):
                assert (event.ifindex, event.address) not in announced
                announced.add((event.ifindex, event.address))
            elif isinstance(event, AddressRemoved):
                assert (event.ifindex, event.address) in announced
                announced.discard((event.ifindex, event.address))
        usable_keys = {k for k, r in last.items()
                       if not r.deleted and unusable_reason(r) is None}
        link_up = {i for i, link in links.items() if link.is_up}
        expected = {k[1] for k in usable_keys
                    if k[0] in link_up or k[0] not in links}
        assert {u.address for u in state.usable_addresses()} == expected
        lost = [e for e in events if isinstance(e, AllAddressesLost)]
        assert bool(lost) == (before and not expected)


def test_carrier_loss_keeps_default_routes() -> None:
    """Carrier lost but administratively up: the kernel keeps the routes (linkdown)."""
    state = state_with_link()
    state.handle(route("10.2.0.1", 2, 600))
    assert state.handle(LinkRecord(2, "b0", LinkFlag.UP)) == [LinkDown(2, "b0")]
    assert state.default_route(V4).gateway == "10.2.0.1"
    assert state.handle(LinkRecord(2, "b0", UP)) == [LinkUp(2, "b0")]
