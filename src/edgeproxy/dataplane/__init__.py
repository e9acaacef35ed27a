"""The asyncio edge proxy: listener, HTTP/1.1 proxying, trust sync, status listener."""
