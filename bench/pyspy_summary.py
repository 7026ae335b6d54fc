"""Summarise ``py-spy record --format raw`` files (``bench/throughput.py --profile DIR``).

    .venv/bin/python bench/pyspy_summary.py DIR/runtime-*.txt [--top 40] [--match runtime/]

Prints, over all files, the share of samples in which each function is on the stack
(inclusive) and at the top (self). py-spy skips idle threads by default, so the shares are
shares of busy time.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^:()]*)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m['fn']} ({path})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--match", default="", help="only functions whose file contains this")
    a = ap.parse_args(argv)
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for path in a.files:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = [_short(f) for f in stack.split(";") if f.strip()]
            total += n
            for f in set(frames):
                inclusive[f] += n
            if frames:
                own[frames[-1]] += n
    if not total:
        print("no samples")
        return 1
    print(f"{total} samples")
    print(f"{'incl %':>7} {'self %':>7}  function")
    for fn, n in inclusive.most_common():
        if a.match and a.match not in fn:
            continue
        print(f"{100 * n / total:7.1f} {100 * own[fn] / total:7.1f}  {fn}")
        a.top -= 1
        if a.top <= 0:
            break
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
