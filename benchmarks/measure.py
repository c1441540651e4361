"""Run one command and print, as JSON, its wall time, CPU seconds and peak RSS.

``python benchmarks/measure.py -- CMD ARGS...``. This is a fresh process per measurement,
so ``getrusage(RUSAGE_CHILDREN)`` holds exactly that command (and the children it waited
for): its user and system CPU seconds and the largest peak RSS among them. The command's
stdout and stderr are kept in the JSON (their last 4,000 characters).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, errors="replace")
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "rc": done.returncode,
                "wall": wall,
                "user": usage.ru_utime,
                "sys": usage.ru_stime,
                "cpu": usage.ru_utime + usage.ru_stime,
                "maxrss_kb": usage.ru_maxrss,  # kilobytes on Linux
                "stdout": done.stdout[-4000:],
                "stderr": done.stderr[-4000:],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
