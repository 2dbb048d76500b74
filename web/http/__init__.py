"""The HTTP transport: the aiohttp application, the fast lane, connection guards, metrics."""
