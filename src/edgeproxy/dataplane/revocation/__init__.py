"""Revocation at the edge: the OCSP client, the answer cache, one connection's gate, and the
worker's service (`check.Revocation`) that joins them to the verify step and the HTTP layer.
"""
