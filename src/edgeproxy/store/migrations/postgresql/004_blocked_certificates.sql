-- Blocked client certificates per CA set (docs/management.md "Blocked certificates"): by SHA-256
-- fingerprint, or by issuer DN and serial number (lower-case hex). Unblocking deletes the row
-- (its UNBLOCK_CERTIFICATE activity remains).
CREATE TABLE blocked_certificates (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ca_set_id bigint NOT NULL REFERENCES ca_sets (id),
    fingerprint text,
    issuer text,
    serial_number text,
    reason text NOT NULL,
    expires_at timestamptz,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX blocked_certificates_set ON blocked_certificates (ca_set_id, id);
