-- Client records (docs/management.md "Safe trust changes"): per network, edge certificate, leaf
-- SHA-256 and node, the client chain a node saw (public certificates only, base64 DER per line),
-- its counts and last outcome. Nodes add their batches up here; rows past the window go.
CREATE TABLE client_records (
    network text NOT NULL,
    edge_certificate text NOT NULL,
    fingerprint text NOT NULL,
    node text NOT NULL,
    ca_set text NOT NULL,
    subject text NOT NULL,
    issuer text NOT NULL,
    sans text NOT NULL,
    chain text NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    handshakes bigint NOT NULL,
    requests bigint NOT NULL,
    last_outcome text NOT NULL,
    PRIMARY KEY (network, edge_certificate, fingerprint, node)
);
CREATE INDEX client_records_set ON client_records (network, ca_set);
CREATE INDEX client_records_seen ON client_records (last_seen);
CREATE INDEX client_records_node ON client_records (node, edge_certificate, last_seen);

-- An activation that an operator acknowledged would refuse clients records how many.
ALTER TABLE activities ADD COLUMN acknowledged_refusals integer;
