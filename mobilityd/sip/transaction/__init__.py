"""RFC 3261 §17 transactions, sans-I/O: state tables, transaction objects and the layer."""
