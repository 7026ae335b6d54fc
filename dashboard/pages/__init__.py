"""Server-rendered ops pages (Jinja2), signed-in by API key or a trusted proxy header."""
