-- CRLs per CA set (docs/management.md "CRLs"). Not versioned; deleting one removes the row (its DELETE_CRL
-- activity remains). crl_number is decimal text: RFC 5280 §5.2.3 allows 20 octets.
CREATE TABLE crls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ca_set_id INTEGER NOT NULL REFERENCES ca_sets (id),
    issuer TEXT NOT NULL,
    issuer_fingerprint TEXT NOT NULL,
    this_update TEXT NOT NULL,
    next_update TEXT,
    crl_number TEXT,
    revoked_count INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    crl_pem TEXT NOT NULL,
    description TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
-- The same CRL twice in one set is refused (409); the index is the backstop of that check.
CREATE UNIQUE INDEX crls_set_fingerprint ON crls (ca_set_id, fingerprint);
