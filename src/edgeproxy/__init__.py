"""edgeproxy: a self-hosted mTLS edge proxy and the management plane for its client CA sets."""

__version__ = "0.1.0"
