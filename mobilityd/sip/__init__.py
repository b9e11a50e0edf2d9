"""mobilityd.sip."""
