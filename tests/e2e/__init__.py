"""End-to-end tests: a real node (admin, edge, status roles), real clients, real signals."""
