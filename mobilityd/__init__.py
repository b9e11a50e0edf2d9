"""mobilityd: secure SIP calls (MIKEY + SRTP) that survive network and device changes.

Subpackages, one per concern:

- :mod:`mobilityd.mikey`    MIKEY codec and key agreement (RFC 3830), sans-I/O
- :mod:`mobilityd.sip`      SIP messages, transactions, dialogs (RFC 3261), sans-I/O,
                            plus thin asyncio transports that can be rebound
- :mod:`mobilityd.media`    RTP/SRTP endpoints (RFC 3550, RFC 3711 via libsrtp)
- :mod:`mobilityd.net`      netlink watcher and source-address choice
- :mod:`mobilityd.mobility` device roaming and session transfer
- :mod:`mobilityd.service`  daemon, configuration, control socket, CLI
"""

__version__ = "0.1.0"
