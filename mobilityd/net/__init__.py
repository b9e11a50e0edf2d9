"""mobilityd.net: what the network looks like and which source address a call should use.

* :mod:`~mobilityd.net.events` -- ``AddressAdded``, ``AddressRemoved``, ``LinkUp``,
  ``LinkDown``, ``DefaultRouteChanged``, ``AllAddressesLost`` (frozen dataclasses).
* :mod:`~mobilityd.net.watcher` -- ``NetlinkWatcher`` (asyncio): initial dump, then
  events; in a given network namespace or the current one.
* :mod:`~mobilityd.net.state` -- ``NetworkState`` (sans-I/O): records in, events out;
  deduplication, ``AllAddressesLost``, resync after a socket overrun.
* :mod:`~mobilityd.net.addresses` -- which addresses can carry a call.
* :mod:`~mobilityd.net.route` -- ``source_address_for(dest)`` (RTM_GETROUTE) and
  ``RouteResolver`` (candidates per link, preferences from
  :mod:`~mobilityd.net.preferences`).
* :mod:`~mobilityd.net.rtnl`, :mod:`~mobilityd.net.rtnl_records` -- the rtnetlink codec.
* :mod:`~mobilityd.net.perf` -- ``measure_detection(n)`` for the handover benchmark.
"""
