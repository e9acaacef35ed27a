"""The admin API (aiohttp): thin handlers over the truststore service, problem+json errors."""
