"""``introspect-data``: connect to a warehouse, read its catalog, profile it, store it."""

from .actor import introspect_data, profile_tables

__all__ = ["introspect_data", "profile_tables"]
