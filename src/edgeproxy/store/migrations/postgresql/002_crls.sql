-- CRLs per CA set (docs/management.md "CRLs"). Not versioned; deleting one removes the row (its DELETE_CRL
-- activity remains). crl_number is decimal text: RFC 5280 §5.2.3 allows 20 octets.
CREATE TABLE crls (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ca_set_id bigint NOT NULL REFERENCES ca_sets (id),
    issuer text NOT NULL,
    issuer_fingerprint text NOT NULL,
    this_update timestamptz NOT NULL,
    next_update timestamptz,
    crl_number text,
    revoked_count integer NOT NULL,
    fingerprint text NOT NULL,
    crl_pem text NOT NULL,
    description text,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL
);
-- The same CRL twice in one set is refused (409); the index is the backstop of that check.
CREATE UNIQUE INDEX crls_set_fingerprint ON crls (ca_set_id, fingerprint);
