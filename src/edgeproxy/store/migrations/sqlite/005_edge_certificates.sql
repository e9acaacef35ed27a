-- Store-managed edge certificates and their mutual-authentication bindings (docs/management.md
-- "Edge certificates"). The private key is only ever stored sealed: AES-256-GCM under the
-- key-encryption key named by key_id, base64 nonce and ciphertext (docs/security.md).
CREATE TABLE edge_certificates (
    name TEXT PRIMARY KEY,
    hostnames TEXT NOT NULL,
    origin TEXT NOT NULL,
    is_default INTEGER NOT NULL,
    chain_pem TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_nonce TEXT NOT NULL,
    key_ciphertext TEXT NOT NULL,
    generation INTEGER NOT NULL,
    warnings TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    modified_by TEXT,
    modified_at TEXT,
    rotated_at TEXT
);

CREATE TABLE edge_bindings (
    edge_certificate TEXT NOT NULL REFERENCES edge_certificates (name),
    network TEXT NOT NULL,
    ca_set_name TEXT NOT NULL,
    settings TEXT NOT NULL,
    modified_by TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    PRIMARY KEY (edge_certificate, network)
);
CREATE INDEX edge_bindings_set ON edge_bindings (ca_set_name);

-- A binding change converges like an activation: its rollout (003_rollouts.sql) holds the nodes
-- it waits for; status, completion and failure are copied here as the rollout moves.
CREATE TABLE binding_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    edge_certificate TEXT NOT NULL,
    network TEXT NOT NULL,
    type TEXT NOT NULL,
    ca_set_name TEXT,
    previous TEXT,
    status TEXT NOT NULL,
    revision INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    completed_at TEXT,
    failure_reason TEXT,
    rollout_id INTEGER REFERENCES rollouts (id)
);
CREATE INDEX binding_changes_edge ON binding_changes (edge_certificate, network, id);

-- A binding change is recorded on its CA set's history, naming the edge certificate.
ALTER TABLE activities ADD COLUMN edge_certificate TEXT;
