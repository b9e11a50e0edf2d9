"""mobilityd.mikey."""
