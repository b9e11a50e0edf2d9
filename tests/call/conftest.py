"""Fixtures for call tests: namespace test hosts (tests/netns.py)."""

from tests.netns import roaming, topology

__all__ = ["roaming", "topology"]
