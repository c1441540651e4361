"""The byte budget over a long run, and the cost of the per-photo path it sits on.

    python benchmarks/budget.py [--quick] [--skip-throughput]

1. A long run on a simulated clock: `inatdl photos fetch` (in this process, the real
   command) against tests/inat_server.py, whose photo hosts count the body bytes they write
   to their sockets, stamped with the simulated time. Photos vary in size like real medium
   photos (60-250 kB, a few up to 600 kB). Reported: the bytes sent in the worst rolling hour
   (and as a share of the limit), the share of the limit used over the whole hours, HEAD
   requests per photo, bytes sent per byte kept, and photos sent whole twice. Two ways to
   run it: waiting at the limit (the default), and `--no-wait` runs started every 10 minutes
   (like a cron job).
2. The per-photo path: `photos fetch --workers 16` at 50 ms of latency against a bare
   thread pool on the same server (benchmarks/run.py's Bench and baselines.py).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from click.testing import CliRunner  # noqa: E402
from inat_server import InatServer  # noqa: E402

from inatdl.cli import cli  # noqa: E402
from inatdl.clock import Clock  # noqa: E402

HOUR = 3600.0
START = 1_700_000_000.0


class SimulatedClock(Clock):
    """Time moves only when a thread waits: to the end of its wait, however many wait at
    once (waits overlap instead of adding up); the downloads themselves take no time."""

    def __init__(self) -> None:
        self._now = START
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        return self.now()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        with self._lock:
            self._now += max(0.0, seconds)
        return event.is_set()


def photo_world(inat: InatServer, data_dir: Path, photos: int, seed: int = 1) -> int:
    """One taxon of ``photos`` one-photo observations of realistic medium sizes; their bytes."""
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(10, "Lythrum salicaria", parent_id=1)
    inat.add_observations(10, photos, first_id=1000)
    draw = random.Random(seed)
    total = 0
    for i in range(photos):
        size = int(draw.lognormvariate(11.8, 0.35))  # median about 133 kB
        size = min(max(size, 60_000), 600_000)
        inat.photo_lengths[(1000 + i) * 10] = size
        total += size
    data_dir.mkdir(parents=True)
    (data_dir / "taxa.csv").write_text(
        "input_name,taxon_id,name,rank,match,observations_count\n"
        "Lythrum salicaria,10,Lythrum salicaria,species,exact,1\n",
        encoding="utf-8",
    )
    return total


def fetch(inat: InatServer, data_dir: Path, clock: SimulatedClock, *extra: str) -> int:
    obj = {"clock": clock, "timeout": (5.0, 5.0)}
    args = ["--data-dir", str(data_dir), "--api-url", inat.api_url, "--api-rate", "1000", "-q"]
    args += ["photos", "fetch", "--size", "medium", "--workers", "8", *extra]
    return CliRunner().invoke(cli, args, obj=obj).exit_code


def simulate(hours: float, limit_mb: int, no_wait: bool) -> dict[str, Any]:
    limit = limit_mb * 1_000_000
    clock = SimulatedClock()
    root = Path(tempfile.mkdtemp(prefix="inatdl-budget-"))
    try:
        with InatServer() as inat:
            inat.clock = clock.now
            photos = int(hours * limit / 140_000)
            kept = photo_world(inat, root / "data", photos)
            started = time.perf_counter()
            limits = ("--hourly-limit", f"{limit_mb}MB", "--daily-limit", "24GB")
            runs = 0
            if no_wait:
                while True:
                    runs += 1
                    code = fetch(inat, root / "data", clock, *limits, "--no-wait")
                    if code != 75:
                        break
                    clock.sleep(600)
            else:
                runs, code = 1, fetch(inat, root / "data", clock, *limits)
            wall = time.perf_counter() - started
            requests = inat.photo_requests()
            gets = [r for r in requests if r.method == "GET"]
            sent = [(r.time, r.sent) for r in gets]
            worst = max(sum(n for t, n in sent if at - HOUR < t <= at) for at, _ in sent)
            span = max(t for t, _ in sent) - START
            whole_hours = int(span // HOUR)
            in_whole = sum(n for t, n in sent if t - START < whole_hours * HOUR)
            return {
                "mode": "--no-wait every 10 min" if no_wait else "waiting",
                "exit": code,
                "runs": runs,
                "photos": photos,
                "hours": span / HOUR,
                "worst_hour": worst,
                "worst_share": worst / limit,
                "used_share": in_whole / (whole_hours * limit) if whole_hours else float("nan"),
                "heads_per_photo": sum(r.method == "HEAD" for r in requests) / photos,
                "sent_per_kept": inat.bytes_sent() / kept,
                "twice": sum(n > 1 for n in inat.sent_in_full().values()),
                "wall": wall,
            }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def throughput(photos: int) -> list[str]:
    """16 workers × 50 ms: inatdl against a bare thread pool, as benchmarks/run.py measures."""
    from run import PYTHON, Bench, Plan, measure, write_taxa  # noqa: PLC0415
    from server import ServerProcess, photo_ids, photo_url  # noqa: PLC0415

    plan = Plan("budget", (16,), (50,), 0, {16: photos}, 20_000, 0, (), 0)
    root = Path(tempfile.mkdtemp(prefix="inatdl-bench-"))
    lines = []
    try:
        with ServerProcess(PYTHON) as server:
            bench = Bench(plan, server, root)
            server.control(latency_ms=50, photo_bytes=20_000, obs_bytes=5_000, taxa={"1650": photos})
            for attempt in range(2):
                data_dir = bench.fresh_dir(f"fetch-{attempt}")
                write_taxa(data_dir, {1650: photos})
                run = bench.fetch(data_dir, 16)
                urls = root / "urls.txt"
                urls.write_text(
                    "\n".join(photo_url(server.base, i, "medium") for i in photo_ids(1650, photos))
                )
                out = bench.fresh_dir(f"pool-{attempt}")
                pool = measure(
                    [PYTHON, str(HERE / "baselines.py"), "threadpool", str(urls), str(out), "--workers", "16"]
                )
                rate, pool_rate = photos / run["wall"], photos / pool["wall"]
                lines.append(
                    f"| {attempt + 1} | {photos} | {rate:.0f} | {1000 * run['cpu'] / photos:.2f} | "
                    f"{pool_rate:.0f} | {1000 * pool['cpu'] / photos:.2f} | {rate / pool_rate:.2f}× |"
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 simulated hours, 1,000 photos at 50 ms")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    hours = 2.0 if args.quick else 6.0
    print(f"## The budget over {hours:.0f} simulated hours at 50 MB/h\n")
    print(
        "| mode | runs | photos | hours | worst rolling hour | share of limit | share used over "
        "whole hours | HEAD / photo | sent / kept | sent whole twice | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for no_wait in (False, True):
        r = simulate(hours, 50, no_wait)
        print(
            f"| {r['mode']} | {r['runs']} | {r['photos']} | {r['hours']:.1f} | "
            f"{r['worst_hour'] / 1e6:.2f} MB | {100 * r['worst_share']:.1f} % | "
            f"{100 * r['used_share']:.1f} % | {r['heads_per_photo']:.3f} | {r['sent_per_kept']:.4f} | "
            f"{r['twice']} | {r['wall']:.0f} |",
            flush=True,
        )
    if not args.skip_throughput:
        print("\n## The per-photo path: 16 workers × 50 ms\n")
        print(
            "| try | photos | inatdl photos/s | inatdl CPU s / 1,000 | thread pool photos/s | "
            "thread pool CPU s / 1,000 | inatdl ÷ pool |"
        )
        print("|---|---|---|---|---|---|---|")
        for line in throughput(1000 if args.quick else 2000):
            print(line, flush=True)


if __name__ == "__main__":
    main()
