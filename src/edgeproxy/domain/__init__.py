"""Pure rules of the truststore: no I/O, and nothing else of ours is imported here."""
