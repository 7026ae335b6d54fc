"""The Trigger.dev-compatible HTTP API (``/api/...``): what ``@trigger.dev/sdk`` v4 calls."""
