"""The tasks that ship with buster-jobs; a worker imports this package by default."""

from . import demo  # noqa: F401
