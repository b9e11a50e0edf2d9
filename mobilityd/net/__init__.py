"""mobilityd.net."""
