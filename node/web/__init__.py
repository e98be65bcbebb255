"""The web interface for NGO staff: server-rendered pages (aiohttp + Jinja2), no JavaScript."""
