-- Truststore schema. JSON columns are text so both back ends share one set of queries.
CREATE TABLE meta (
    id integer PRIMARY KEY CHECK (id = 1),
    revision bigint NOT NULL
);
INSERT INTO meta (id, revision) VALUES (1, 0);

CREATE TABLE ca_sets (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    description text,
    status text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    last_version integer NOT NULL DEFAULT 0,
    staging_version integer,
    production_version integer,
    deleted_by text,
    delete_requested_at timestamptz,
    deleted_at timestamptz,
    delete_failure text
);
-- Names are unique among sets that are not deleted; a deleted set frees its name.
CREATE UNIQUE INDEX ca_sets_live_name ON ca_sets (name) WHERE status <> 'DELETED';

CREATE TABLE versions (
    ca_set_id bigint NOT NULL REFERENCES ca_sets (id),
    version integer NOT NULL,
    description text,
    allow_insecure_sha1 boolean NOT NULL,
    require_root_certificate boolean NOT NULL,
    certificates text NOT NULL,
    fingerprints text NOT NULL,
    warnings text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    modified_by text,
    modified_at timestamptz,
    first_activated_at timestamptz,
    PRIMARY KEY (ca_set_id, version)
);

CREATE TABLE activations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ca_set_id bigint NOT NULL REFERENCES ca_sets (id),
    version integer NOT NULL,
    network text NOT NULL,
    type text NOT NULL,
    status text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    revision bigint NOT NULL,
    previous_version integer,
    completed_at timestamptz,
    failure_reason text,
    percent_complete integer NOT NULL DEFAULT 0,
    warnings text NOT NULL
);
CREATE INDEX activations_set ON activations (ca_set_id, id);
CREATE INDEX activations_open ON activations (status);

CREATE TABLE activities (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ca_set_id bigint NOT NULL REFERENCES ca_sets (id),
    type text NOT NULL,
    network text,
    version integer,
    at timestamptz NOT NULL,
    actor text NOT NULL
);
CREATE INDEX activities_set ON activities (ca_set_id, id);

CREATE TABLE nodes (
    name text PRIMARY KEY,
    network text NOT NULL,
    roles text NOT NULL,
    started_at timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    bindings text NOT NULL,
    applied_revision bigint NOT NULL,
    applied_versions text NOT NULL,
    apply_errors text NOT NULL,
    applied_at timestamptz
);
