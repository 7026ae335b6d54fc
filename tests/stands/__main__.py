"""``python -m tests.stands up|down|status [names...]`` — start or stop the local stands."""

from __future__ import annotations

import sys
import time

from tests.stands import STANDS
from tests.stands._common import load


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("up", "down", "status", "install"):
        print("usage: python -m tests.stands up|down|status|install [snowflake bigquery ...]")
        return 2
    names = argv[1:] or list(STANDS)
    for name in names:
        stand = STANDS[name]
        current = load(name)
        t0 = time.perf_counter()
        if argv[0] == "install":
            stand.ensure_installed()
            print(f"{name}: installed in {time.perf_counter() - t0:.1f}s")
        elif argv[0] == "up":
            if current is not None:
                print(f"{name}: already up on {current.port} (pid {current.pid})")
                continue
            handle = stand.start()
            print(f"{name}: up on {handle.host}:{handle.port} pid {handle.pid} "
                  f"in {time.perf_counter() - t0:.1f}s")
        elif argv[0] == "down":
            if current is not None:
                stand.stop(current)
                print(f"{name}: stopped pid {current.pid}")
        else:
            state = f"up on {current.port} pid {current.pid}" if current else "down"
            print(f"{name}: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
