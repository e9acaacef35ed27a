"""The docs/performance.md benchmark: edgeproxy against nginx as the equivalent mTLS reverse proxy
(`make bench`)."""
