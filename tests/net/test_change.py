"""mobilityd.net.change: the rtnetlink requests the handover benchmark sends (the same
as ``ip link set`` / ``ip route add``, RFC 3549 §2.3.3), encoded field by field, and
applied to a real namespace with the kernel's acknowledgement bracketing the change."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from mobilityd.net.change import (
    ChangeRefusedError,
    DefaultRouteRequest,
    LinkState,
    LinkStateRequest,
    NeighborUseRequest,
    NetlinkChanger,
)
from mobilityd.net.errors import InvalidAddressError, NetError
from mobilityd.net.rtnl import NlFlag, NlMsgType, RtAttr, parse_attrs
from tests.netns import RoamingTopology

NLMSGHDR = struct.Struct("=IHHII")
IFF_UP = 0x1


def test_link_down_request_is_rtm_newlink_clearing_only_iff_up() -> None:
    data = bytes(LinkStateRequest(7, LinkState.DOWN, sequence=42))
    length, kind, flags, sequence, port = NLMSGHDR.unpack_from(data)
    assert (length, kind, sequence, port) == (len(data), NlMsgType.RTM_NEWLINK, 42, 0)
    assert flags == NlFlag.REQUEST | NlFlag.ACK
    family, _pad, _type, index, ifi_flags, change = struct.unpack_from("=BBHiII", data, 16)
    assert (family, index, ifi_flags, change) == (socket.AF_UNSPEC, 7, 0, IFF_UP)
    assert len(data) == 32


def test_link_up_request_sets_iff_up() -> None:
    data = bytes(LinkStateRequest(3, LinkState.UP, sequence=1))
    assert struct.unpack_from("=BBHiII", data, 16)[3:] == (3, IFF_UP, IFF_UP)


def test_default_route_request_names_gateway_link_and_metric() -> None:
    data = bytes(DefaultRouteRequest("10.4.0.1", 5, 100, sequence=9))
    length, kind, flags, sequence, _ = NLMSGHDR.unpack_from(data)
    assert (length, kind, sequence) == (len(data), NlMsgType.RTM_NEWROUTE, 9)
    assert flags == NlFlag.REQUEST | NlFlag.ACK | 0x400 | 0x200  # CREATE | EXCL
    family, dst_len, _src, _tos, table, proto, scope, rtype, _f = struct.unpack_from(
        "=BBBBBBBBI", data, 16)
    assert (family, dst_len, table, proto, scope, rtype) == (socket.AF_INET, 0, 254, 3, 0, 1)
    attrs = parse_attrs(data, 28)
    assert attrs[RtAttr.GATEWAY] == socket.inet_aton("10.4.0.1")
    assert struct.unpack("=I", attrs[RtAttr.OIF]) == (5,)
    assert struct.unpack("=I", attrs[RtAttr.PRIORITY]) == (100,)


def test_ipv6_default_route_request() -> None:
    data = bytes(DefaultRouteRequest("fd00:4::1", 5, 100, sequence=1))
    assert data[16] == socket.AF_INET6
    assert parse_attrs(data, 28)[RtAttr.GATEWAY] == socket.inet_pton(socket.AF_INET6,
                                                                     "fd00:4::1")


def test_neighbor_use_request_is_rtm_newneigh_with_ntf_use() -> None:
    data = bytes(NeighborUseRequest("10.2.0.1", 4, sequence=3))
    length, kind, flags, sequence, _ = NLMSGHDR.unpack_from(data)
    assert (length, kind, sequence) == (len(data), NlMsgType.RTM_NEWNEIGH, 3)
    assert flags == NlFlag.REQUEST | NlFlag.ACK | 0x400 | 0x100  # CREATE | REPLACE
    family, ifindex, state, ndm_flags, ndm_type = struct.unpack_from("=BxxxiHBB", data, 16)
    assert (family, ifindex, state, ndm_flags, ndm_type) == (socket.AF_INET, 4, 0, 0x01, 0)
    assert parse_attrs(data, 28)[1] == socket.inet_aton("10.2.0.1")  # NDA_DST
    v6 = bytes(NeighborUseRequest("fd00:2::1", 4, sequence=1))
    assert v6[16] == socket.AF_INET6
    assert parse_attrs(v6, 28)[1] == socket.inet_pton(socket.AF_INET6, "fd00:2::1")


def test_bad_gateway_is_a_typed_error() -> None:
    with pytest.raises(InvalidAddressError):
        bytes(DefaultRouteRequest("not-an-ip", 5, 100, sequence=1))
    with pytest.raises(InvalidAddressError):
        bytes(NeighborUseRequest("gateway", 5, sequence=1))


def test_missing_namespace_is_a_typed_error() -> None:
    with pytest.raises(NetError):
        NetlinkChanger("mobilityd-no-such-namespace")


@pytest.mark.netns
def test_changes_apply_in_the_namespace_within_the_stamped_window(
        roaming: RoamingTopology) -> None:
    bob = roaming.bob
    eth = bob.ifindex("b1")
    with NetlinkChanger(bob.ns) as changer:
        down = changer.link(eth, LinkState.DOWN)
        assert down.sent_at <= down.acked_at
        assert "state DOWN" in bob.ip("link", "show", "b1").stdout
        assert bob.kernel_source_for(roaming.alice4) == "10.2.0.2"  # wlan takes over
        changer.link(eth, LinkState.UP)
        assert bob.kernel_source_for(roaming.alice4) == "10.2.0.2"  # eth route went
        changer.add_default_route("10.4.0.1", eth, 100)
        assert bob.kernel_source_for(roaming.alice4) == "10.4.0.2"
        with pytest.raises(ChangeRefusedError) as refused:
            changer.add_default_route("10.4.0.1", eth, 100)  # exists already
        assert refused.value.errno == 17  # EEXIST


@pytest.mark.netns
def test_neighbor_use_resolves_a_gateway_never_used(roaming: RoamingTopology) -> None:
    bob = roaming.bob
    assert bob.ip("neigh", "show", "10.2.0.1", "dev", "b0").stdout.strip() == ""
    with NetlinkChanger(bob.ns) as changer:
        changer.use_neighbor("10.2.0.1", bob.ifindex("b0"))
    deadline = time.monotonic() + 5
    while "lladdr" not in bob.ip("neigh", "show", "10.2.0.1", "dev", "b0").stdout:
        assert time.monotonic() < deadline, "ARP did not resolve the gateway"
        time.sleep(0.05)
