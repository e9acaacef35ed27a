-- The protocols ALPN may select for a store-managed edge certificate, in the server's order of
-- preference (a JSON array of "h2" and "http/1.1"). NULL, on rows stored before: the default,
-- both with HTTP/2 first (domain/edge_model.py ALPN_PROTOCOLS).
ALTER TABLE edge_certificates ADD COLUMN alpn TEXT;
