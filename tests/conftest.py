"""Shared pytest configuration.

The slow / exhaustive tier is opt-in: set MOBILITYD_SLOW=1.
Tests needing root + network namespaces are marked ``netns`` and skip with a reason
when not run as root.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_slow = os.environ.get("MOBILITYD_SLOW") == "1"
    is_root = os.geteuid() == 0
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow tier: set MOBILITYD_SLOW=1 to run"))
        if "netns" in item.keywords and not is_root:
            item.add_marker(pytest.mark.skip(reason="needs root for network namespaces"))
