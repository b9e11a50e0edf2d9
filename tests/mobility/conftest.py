"""Fixtures for tests/mobility: the namespace test hosts of tests/netns.py."""

from tests.netns import roaming, topology

__all__ = ["roaming", "topology"]
