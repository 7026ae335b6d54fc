"""The task ``bench/throughput.py`` runs on a real ``buster-jobs worker``.

Imported by the worker through ``BUSTER_TASK_MODULES=bench.tasks`` (with the repository on
``PYTHONPATH``). The producer triggers it by id without importing it, as application code
would. Its queue comes from ``BENCH_RUNTIME_QUEUE`` so a benchmark never touches real queues.
"""

from __future__ import annotations

import os
from typing import Any

from runtime import task

QUEUE = os.environ.get("BENCH_RUNTIME_QUEUE", "bench-runtime")
TASK_ID = "bench-noop"


@task(id=TASK_ID, queue=QUEUE)
def bench_noop(payload: Any) -> None:
    """Does nothing: what is measured is the runtime around it."""
    return None


if os.environ.get("BENCH_WHATIF"):  # benchmark-only prototypes; see bench/whatif.py
    from bench.whatif import install_from_env

    install_from_env()
