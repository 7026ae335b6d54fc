"""The tasks that ship with buster-jobs; a worker imports this package by default."""

from . import (
    analyst_agent,  # noqa: F401
    demo,  # noqa: F401
    introspect_data,  # noqa: F401
)
