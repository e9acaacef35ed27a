"""Sans-IO TLS: ClientHello parsing, trust contexts, the memory-BIO engine. No sockets here."""
