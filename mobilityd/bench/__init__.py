"""mobilityd.bench."""
