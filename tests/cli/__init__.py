"""Operator CLI tests: `edgeproxy` commands against a real admin API."""
