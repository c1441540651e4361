"""The per-photo path, interleaved: this checkout, an older commit and the bare thread pool.

    python benchmarks/per_photo.py [--before 809814c^1] [--tries 4] [--photos 2000]

`photos fetch --workers 16` at 50 ms on benchmarks/server.py, as run.py measures it (a fresh
data dir, the whole command timed, CPU and peak RSS of a fresh child), once with this
checkout's code, once with the code of --before (extracted with `git archive`, run with
PYTHONPATH), once the bare thread pool (baselines.py) on the same URLs; repeated --tries
times in turn, so the load of a shared machine falls on all three alike. Prints each try
and the medians. The default --before is main just before batched paging, the budget
redesign and dataset export were merged.

Two rates for each run: photos over the whole command's time, and photos over the
download phase as the photo hosts see it (from the first photo request's arrival to the
last one's answer, measured by the server): the per-photo path alone. The whole command
of inatdl also imports more and asks the API for the page of photos before the first
photo request, which the pool, handed its URLs, does not. Both trees are byte-compiled
first, as `pip install` leaves an installed package.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any

from run import BIG_LIMIT, HERE, PYTHON, compile_tree, measure, write_taxa
from server import ServerProcess, photo_ids, photo_url

TAXON = 1650


def extract(commit: str, into: Path) -> Path:
    """The src/ tree of ``commit``, for PYTHONPATH."""
    archive = subprocess.run(
        ["git", "-C", str(HERE.parent), "archive", commit, "src"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def fetch(server: ServerProcess, data_dir: Path, src: Path | None) -> dict[str, Any]:
    command = [PYTHON, "-m", "inatdl", "--data-dir", str(data_dir), "--api-url", server.api_url]
    command += ["--api-rate", "1000", "photos", "fetch", "--size", "medium", "--workers", "16"]
    command += ["--hourly-limit", BIG_LIMIT, "--daily-limit", BIG_LIMIT]
    if src is not None:
        command = ["env", f"PYTHONPATH={src}", *command]
    return measure(command)


def one_try(
    server: ServerProcess, out: Path, name: str, urls: Path, photos: int, old_src: Path
) -> dict[str, Any]:
    """One measured run of ``name``: this checkout, the one before, or the thread pool."""
    if name == "pool":
        return measure(
            [PYTHON, str(HERE / "baselines.py"), "threadpool", str(urls), str(out), "--workers", "16"]
        )
    write_taxa(out, {TAXON: photos})
    run = fetch(server, out, old_src if name == "before" else None)
    if run["rc"] != 0:
        raise SystemExit(f"{name} exited {run['rc']}: {run['stderr'][-600:]}")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="809814c^1", help="the git commit to compare with")
    parser.add_argument("--tries", type=int, default=4)
    parser.add_argument("--photos", type=int, default=2000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="inatdl-bench-"))
    rows: dict[str, list[tuple[float, float, float]]] = {"this": [], "before": [], "pool": []}
    try:
        old_src = extract(args.before, root / "before")
        compile_tree(old_src)
        compile_tree(HERE.parent / "src")
        with ServerProcess(PYTHON) as server:
            server.control(latency_ms=50, photo_bytes=20_000, obs_bytes=5_000, taxa={str(TAXON): args.photos})
            urls = root / "urls.txt"
            ids = photo_ids(TAXON, args.photos)
            urls.write_text("\n".join(photo_url(server.base, i, "medium") for i in ids))
            print(f"16 workers × 50 ms, {args.photos} photos of 20 kB; before = {args.before}")
            print(f"load average: {os.getloadavg()}\n")
            print(
                "| try | code | photos/s, whole command | photos/s, download phase | CPU ms a photo | "
                "peak RSS MB |\n|---|---|---|---|---|---|"
            )
            for attempt in range(args.tries):
                for name in rows:
                    server.control(reset=True)
                    run = one_try(server, root / f"{attempt}-{name}", name, urls, args.photos, old_src)
                    shutil.rmtree(root / f"{attempt}-{name}")
                    rate, cpu_ms = args.photos / run["wall"], 1000 * run["cpu"] / args.photos
                    phase = args.photos / server.stats()["photo_seconds"]
                    rows[name].append((rate, phase, cpu_ms))
                    rss = run["maxrss_kb"] / 1024
                    print(
                        f"| {attempt + 1} | {name} | {rate:.0f} | {phase:.0f} | {cpu_ms:.2f} | {rss:.0f} |",
                        flush=True,
                    )
            print(f"\nload average after: {os.getloadavg()}\n")
            print(
                "| code | photos/s, whole command | ÷ pool | photos/s, download phase | ÷ pool | "
                "CPU ms a photo |\n|---|---|---|---|---|---|"
            )
            for name, values in rows.items():
                cells = []
                for column in (0, 1):
                    ratios = [v[column] / p[column] for v, p in zip(values, rows["pool"], strict=True)]
                    median = statistics.median(v[column] for v in values)
                    cells += [f"{median:.0f}", f"{statistics.median(ratios):.3f}×"]
                print(f"| {name} | {' | '.join(cells)} | {statistics.median(v[2] for v in values):.2f} |")
            print("\n(medians of the tries; each ratio is the median of the tries' ratios to the pool's run)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
