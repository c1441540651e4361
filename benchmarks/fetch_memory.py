"""Peak memory of `photos fetch`, interleaved: this checkout and an older commit.

    python benchmarks/fetch_memory.py [--before 30a1ab4] [--tries 3]

run.py's memory cases (`photos fetch --dry-run` and a real fetch of a 2,500- and a
25,000-observation taxon: 1 MB observation pages, photos of 2 kB, 64 workers, 0 ms, a fresh
data dir each) with this checkout's code and with the code of --before (extracted with
`git archive`, run with PYTHONPATH), the two in turn each try, so that the load of a shared
machine falls on both alike. Prints each run (peak RSS of a fresh child, wall, CPU) and the
medians. ~3 min at 3 tries.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from per_photo import extract
from run import BIG_LIMIT, HERE, PYTHON, compile_tree, measure, write_taxa
from server import ServerProcess

CASES = [("--dry-run", 2_500), ("--dry-run", 25_000), ("fetch", 2_500), ("fetch", 25_000)]


def fetch(server: ServerProcess, data_dir: Path, src: Path, kind: str) -> dict[str, Any]:
    """One measured `photos fetch` (or its --dry-run) with the code in ``src``."""
    command = [PYTHON, "-m", "inatdl", "--data-dir", str(data_dir), "--api-url", server.api_url]
    command += ["--api-rate", "1000", "photos", "fetch", "--size", "medium", "--workers", "64"]
    command += ["--hourly-limit", BIG_LIMIT, "--daily-limit", BIG_LIMIT]
    command += ["--dry-run"] if kind == "--dry-run" else []
    os.environ["PYTHONPATH"] = str(src)  # run.measure's child inherits it
    run = measure(command)
    if run["rc"] != 0:
        raise SystemExit(f"exited {run['rc']}: {run['stderr'][-600:]}")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="30a1ab4", help="the git commit to compare with")
    parser.add_argument("--tries", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="inatdl-memory-"))
    codes = {"this": HERE.parent / "src", "before": extract(args.before, root / "before")}
    runs: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    try:
        for src in codes.values():
            compile_tree(src)
        with ServerProcess(PYTHON) as server:
            print(f"before = {args.before}; load average: {os.getloadavg()}\n")
            print("| try | case | observations | code | peak RSS MB | wall s | CPU s |")
            print("|---|---|---|---|---|---|---|")
            for attempt in range(args.tries):
                for kind, count in CASES:
                    taxon = 200 + count // 100
                    server.control(latency_ms=0, photo_bytes=2_000, obs_bytes=5_000, taxa={str(taxon): count})
                    for name, src in codes.items():
                        data_dir = root / f"{attempt}-{kind}-{count}-{name}"
                        write_taxa(data_dir, {taxon: count})
                        run = fetch(server, data_dir, src, kind)
                        shutil.rmtree(data_dir)
                        runs.setdefault((kind, count, name), []).append(run)
                        print(
                            f"| {attempt + 1} | {kind} | {count:,} | {name} | {run['maxrss_kb'] / 1024:.0f} "
                            f"| {run['wall']:.2f} | {run['cpu']:.2f} |",
                            flush=True,
                        )
            print(f"\nload average after: {os.getloadavg()}\n")
            print("| case | observations | code | peak RSS MB (median, range) | wall s | CPU s |")
            print("|---|---|---|---|---|---|")
            for (kind, count, name), values in runs.items():
                rss = [v["maxrss_kb"] / 1024 for v in values]
                wall = statistics.median(v["wall"] for v in values)
                cpu = statistics.median(v["cpu"] for v in values)
                spread = f"{statistics.median(rss):.0f} ({min(rss):.0f}–{max(rss):.0f})"
                print(f"| {kind} | {count:,} | {name} | {spread} | {wall:.2f} | {cpu:.2f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
