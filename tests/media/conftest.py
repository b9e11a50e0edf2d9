"""Fixtures for media tests: network-namespace test hosts from tests/netns.py."""

from tests.netns import roaming, topology

__all__ = ["roaming", "topology"]
