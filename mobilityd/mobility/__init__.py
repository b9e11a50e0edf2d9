"""mobilityd.mobility."""
