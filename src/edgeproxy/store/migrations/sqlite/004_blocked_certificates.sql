-- Blocked client certificates per CA set (docs/management.md "Blocked certificates"): by SHA-256
-- fingerprint, or by issuer DN and serial number (lower-case hex). Unblocking deletes the row
-- (its UNBLOCK_CERTIFICATE activity remains).
CREATE TABLE blocked_certificates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ca_set_id INTEGER NOT NULL REFERENCES ca_sets (id),
    fingerprint TEXT,
    issuer TEXT,
    serial_number TEXT,
    reason TEXT NOT NULL,
    expires_at TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX blocked_certificates_set ON blocked_certificates (ca_set_id, id);
