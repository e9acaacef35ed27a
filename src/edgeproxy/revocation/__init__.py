"""Revocation, pure: what to ask an OCSP responder, whether its answer is trustworthy, which
certificates of a verified chain to check, and how current the CRLs in force are.

No I/O here: the data plane's OCSP client, cache and per-connection gate live in
`edgeproxy.dataplane.revocation`.
"""
