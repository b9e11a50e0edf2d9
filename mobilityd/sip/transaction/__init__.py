"""RFC 3261 §17 transactions, sans-I/O.

- ``states``: the four state machines (Figures 5-8, plus RFC 6026 Accepted) as tables;
- ``machine``: one transaction running its table;
- ``layer``: matching (§17.1.3, §17.2.3), timers, the outgoing and upcall queues;
- ``facts``: what matching reads from each request, read once;
- ``outbound``: transport kinds and outgoing datagrams; ``build``: the non-2xx ACK.
"""

from mobilityd.sip.transaction.layer import TransactionLayer, Upcall, UpcallKind
from mobilityd.sip.transaction.machine import Transaction, TransactionStateError
from mobilityd.sip.transaction.outbound import Addr, Outgoing, TransportKind
from mobilityd.sip.transaction.states import TxKind, TxState

__all__ = [
    "Addr",
    "Outgoing",
    "Transaction",
    "TransactionLayer",
    "TransactionStateError",
    "TransportKind",
    "TxKind",
    "TxState",
    "Upcall",
    "UpcallKind",
]
