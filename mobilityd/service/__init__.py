"""mobilityd.service."""
