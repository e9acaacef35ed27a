"""The §7 benchmark: edgeproxy against nginx as the equivalent mTLS reverse proxy (`make bench`)."""
