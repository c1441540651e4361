"""Run one command and print, as JSON, its wall time, CPU seconds and peak RSS.

``python benchmarks/measure.py -- CMD ARGS...``. This is a fresh process per measurement,
so ``getrusage(RUSAGE_CHILDREN)`` holds exactly that command (and the children it waited
for): its user and system CPU seconds and the largest peak RSS among them. The command's
stdout and stderr are kept in the JSON (their last 4,000 characters).

A command of several processes (the export's shard workers) shares pages between them, so
the largest RSS understates it and the sum of RSS counts shared pages twice: on Linux the
sum of every process's PSS (its own pages, and its share of the shared ones) is sampled
every 50 ms too, and its highest value reported as ``tree_pss_kb``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, text=True, errors="replace")
        tree_pss = 0
        while process.poll() is None:
            tree_pss = max(tree_pss, _tree_pss_kb(process.pid))
            time.sleep(0.05)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "rc": process.returncode,
                "wall": wall,
                "user": usage.ru_utime,
                "sys": usage.ru_stime,
                "cpu": usage.ru_utime + usage.ru_stime,
                "maxrss_kb": usage.ru_maxrss,  # kilobytes on Linux
                "tree_pss_kb": tree_pss,  # 0 where /proc has no smaps_rollup
                "stdout": stdout[-4000:],
                "stderr": stderr[-4000:],
            }
        )
    )
    return 0


def _tree_pss_kb(pid: int) -> int:
    """The summed PSS of ``pid`` and its descendants now, in kB (0 without /proc)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue  # ended meanwhile, or no such file here
    return total


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
