-- Truststore schema. Timestamps are ISO 8601 text in UTC; JSON columns are text.
CREATE TABLE meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
);
INSERT INTO meta (id, revision) VALUES (1, 0);

CREATE TABLE ca_sets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_version INTEGER NOT NULL DEFAULT 0,
    staging_version INTEGER,
    production_version INTEGER,
    deleted_by TEXT,
    delete_requested_at TEXT,
    deleted_at TEXT,
    delete_failure TEXT
);
-- Names are unique among sets that are not deleted; a deleted set frees its name.
CREATE UNIQUE INDEX ca_sets_live_name ON ca_sets (name) WHERE status <> 'DELETED';

CREATE TABLE versions (
    ca_set_id INTEGER NOT NULL REFERENCES ca_sets (id),
    version INTEGER NOT NULL,
    description TEXT,
    allow_insecure_sha1 INTEGER NOT NULL,
    require_root_certificate INTEGER NOT NULL,
    certificates TEXT NOT NULL,
    fingerprints TEXT NOT NULL,
    warnings TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    modified_by TEXT,
    modified_at TEXT,
    first_activated_at TEXT,
    PRIMARY KEY (ca_set_id, version)
);

CREATE TABLE activations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ca_set_id INTEGER NOT NULL REFERENCES ca_sets (id),
    version INTEGER NOT NULL,
    network TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revision INTEGER NOT NULL,
    previous_version INTEGER,
    completed_at TEXT,
    failure_reason TEXT,
    percent_complete INTEGER NOT NULL DEFAULT 0,
    warnings TEXT NOT NULL
);
CREATE INDEX activations_set ON activations (ca_set_id, id);
CREATE INDEX activations_open ON activations (status);

CREATE TABLE activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ca_set_id INTEGER NOT NULL REFERENCES ca_sets (id),
    type TEXT NOT NULL,
    network TEXT,
    version INTEGER,
    at TEXT NOT NULL,
    actor TEXT NOT NULL
);
CREATE INDEX activities_set ON activities (ca_set_id, id);

CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    network TEXT NOT NULL,
    roles TEXT NOT NULL,
    started_at TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    bindings TEXT NOT NULL,
    applied_revision INTEGER NOT NULL,
    applied_versions TEXT NOT NULL,
    apply_errors TEXT NOT NULL,
    applied_at TEXT
);
