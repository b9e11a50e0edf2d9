"""mobilityd.media."""
