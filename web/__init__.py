"""The frontend's aiohttp application: API v3, pages, admin and /status."""
