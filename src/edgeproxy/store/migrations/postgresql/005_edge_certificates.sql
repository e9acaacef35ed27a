-- Store-managed edge certificates and their mutual-authentication bindings (docs/management.md
-- "Edge certificates"). The private key is only ever stored sealed: AES-256-GCM under the
-- key-encryption key named by key_id, base64 nonce and ciphertext (docs/security.md).
CREATE TABLE edge_certificates (
    name text PRIMARY KEY,
    hostnames text NOT NULL,
    origin text NOT NULL,
    is_default boolean NOT NULL,
    chain_pem text NOT NULL,
    key_id text NOT NULL,
    key_nonce text NOT NULL,
    key_ciphertext text NOT NULL,
    generation integer NOT NULL,
    warnings text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    modified_by text,
    modified_at timestamptz,
    rotated_at timestamptz
);

CREATE TABLE edge_bindings (
    edge_certificate text NOT NULL REFERENCES edge_certificates (name),
    network text NOT NULL,
    ca_set_name text NOT NULL,
    settings text NOT NULL,
    modified_by text NOT NULL,
    modified_at timestamptz NOT NULL,
    PRIMARY KEY (edge_certificate, network)
);
CREATE INDEX edge_bindings_set ON edge_bindings (ca_set_name);

-- A binding change converges like an activation: its rollout (003_rollouts.sql) holds the nodes
-- it waits for; status, completion and failure are copied here as the rollout moves.
CREATE TABLE binding_changes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    edge_certificate text NOT NULL,
    network text NOT NULL,
    type text NOT NULL,
    ca_set_name text,
    previous text,
    status text NOT NULL,
    revision bigint NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    completed_at timestamptz,
    failure_reason text,
    rollout_id bigint REFERENCES rollouts (id)
);
CREATE INDEX binding_changes_edge ON binding_changes (edge_certificate, network, id);

-- A binding change is recorded on its CA set's history, naming the edge certificate.
ALTER TABLE activities ADD COLUMN edge_certificate text;
