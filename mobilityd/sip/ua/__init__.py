"""The user-agent core, split by concern (the public class is
``mobilityd.sip.useragent.UserAgent``, which stacks them):

- ``core``: state and the sans-I/O driving API (receive, timers, output, events);
- ``actions``: sending requests/responses, ending calls, UA timers;
- ``inbound``: requests from the network (UAS core);
- ``upcalls``: responses and failures from the transaction layer (UAC core);
- ``requests``, ``session``, ``config``: request builders, per-call state, settings;
- ``memnet``: an in-memory network with a hand-advanced clock and seeded loss.
"""
