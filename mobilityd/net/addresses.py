"""Which interface addresses can carry a call (the usability filter).

An address is refused when it cannot be the source of a call's media and signalling:

* loopback (``127.0.0.0/8``, ``::1``) or any address on a loopback device;
* link-local (``169.254.0.0/16``, ``fe80::/10``, RFC 3927 / RFC 4291 §2.5.6) unless the
  configuration allows it: it is only reachable on one link and needs a scope id;
* IPv6 still ``tentative``: Duplicate Address Detection has not ended and the kernel
  will not send from it (RFC 4862 §5.4); it becomes usable with the later RTM_NEWADDR
  that no longer carries ``IFA_F_TENTATIVE``;
* ``dadfailed`` (a duplicate was found, RFC 4862 §5.4.5) and ``deprecated`` (preferred
  lifetime over, RFC 4862 §5.5.4: not to be used for new communication);
* multicast, unspecified and otherwise unparseable addresses.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from mobilityd.net.events import AddressFlag
from mobilityd.net.records import AddressRecord


class Unusable(enum.Enum):
    """Why an address was refused."""

    MALFORMED = "not an IP address"
    LOOPBACK = "loopback"
    LINK_LOCAL = "link-local"
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"
    TENTATIVE = "tentative (DAD not finished)"
    DAD_FAILED = "duplicate address detection failed"
    DEPRECATED = "deprecated"


@dataclass(frozen=True)
class UsabilityPolicy:
    """Configuration of the filter."""

    allow_link_local: bool = False


_FLAG_REASONS = (
    (AddressFlag.DADFAILED, Unusable.DAD_FAILED),
    (AddressFlag.TENTATIVE, Unusable.TENTATIVE),
    (AddressFlag.DEPRECATED, Unusable.DEPRECATED),
)


def unusable_reason(
    record: AddressRecord,
    *,
    on_loopback_link: bool = False,
    policy: UsabilityPolicy = UsabilityPolicy(),
) -> Unusable | None:
    """Return why ``record`` cannot carry a call, or ``None`` when it can."""
    try:
        parsed = ipaddress.ip_address(record.address)
    except ValueError:
        return Unusable.MALFORMED
    if on_loopback_link or parsed.is_loopback:
        return Unusable.LOOPBACK
    if parsed.is_unspecified:
        return Unusable.UNSPECIFIED
    if parsed.is_multicast:
        return Unusable.MULTICAST
    if parsed.is_link_local and not policy.allow_link_local:
        return Unusable.LINK_LOCAL
    for flag, reason in _FLAG_REASONS:
        if record.flags & flag:
            return reason
    return None


def is_usable(
    record: AddressRecord,
    *,
    on_loopback_link: bool = False,
    policy: UsabilityPolicy = UsabilityPolicy(),
) -> bool:
    """True when ``record`` can be the local address of a call."""
    return unusable_reason(record, on_loopback_link=on_loopback_link, policy=policy) is None
