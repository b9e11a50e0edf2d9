"""Pieces of the user-agent core: request builders, per-call session state, REFER
helpers.  The engine itself is ``mobilityd.sip.useragent.UserAgent``."""
