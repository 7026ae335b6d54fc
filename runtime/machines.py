"""Trigger.dev's machine presets, and which queue each one runs on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Machine:
    name: str
    cpu: float
    memory_gb: float

    @property
    def is_large(self) -> bool:
        return self.name.startswith("large")


PRESETS: dict[str, Machine] = {
    m.name: m
    for m in (
        Machine("micro", 0.25, 0.25),
        Machine("small-1x", 0.5, 0.5),
        Machine("small-2x", 1, 1),
        Machine("medium-1x", 1, 2),
        Machine("medium-2x", 2, 4),
        Machine("large-1x", 4, 8),
        Machine("large-2x", 8, 16),
    )
}
DEFAULT_MACHINE = "small-1x"


def machine(name: str) -> Machine:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown machine preset {name!r}; choose one of {', '.join(PRESETS)}"
        ) from None


def queue_for(machine_name: str, default_queue: str, large_queue: str) -> str:
    """Large presets run on the large-machine queue, the rest on the default queue."""
    return large_queue if machine(machine_name).is_large else default_queue
