-- Client records (docs/management.md "Safe trust changes"): per network, edge certificate, leaf
-- SHA-256 and node, the client chain a node saw (public certificates only, base64 DER per line),
-- its counts and last outcome. Nodes add their batches up here; rows past the window go.
CREATE TABLE client_records (
    network TEXT NOT NULL,
    edge_certificate TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    node TEXT NOT NULL,
    ca_set TEXT NOT NULL,
    subject TEXT NOT NULL,
    issuer TEXT NOT NULL,
    sans TEXT NOT NULL,
    chain TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    handshakes INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    last_outcome TEXT NOT NULL,
    PRIMARY KEY (network, edge_certificate, fingerprint, node)
);
CREATE INDEX client_records_set ON client_records (network, ca_set);
CREATE INDEX client_records_seen ON client_records (last_seen);
CREATE INDEX client_records_node ON client_records (node, edge_certificate, last_seen);

-- An activation that an operator acknowledged would refuse clients records how many.
ALTER TABLE activities ADD COLUMN acknowledged_refusals INTEGER;
