"""Three sizes in one walk against three walks: API requests and time.

    python benchmarks/sizes.py [--observations 2000] [--workers 16]

Two taxa of N one-photo observations each on benchmarks/server.py (photos of 2 kB, no
latency, `--api-rate 1000`, limits of 1000GB), each command in a fresh measuring child
(measure.py), each way in a fresh data dir:

- one walk: `photos fetch --size square,medium,original`;
- three walks: `photos fetch --size square`, then `--size medium`, then `--size original`,
  as the job had to be done before (the wall and CPU times are their sums).

Prints a Markdown table: API requests and observation pages (counted by the server), photo
GETs, wall and CPU seconds, and the listing's time at iNaturalist's pace of 1 request a
second, which is what the requests cost on the real service.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import BIG_LIMIT, inatdl_command, measure, write_taxa  # noqa: E402
from server import ServerProcess  # noqa: E402

SIZES = ("square", "medium", "original")


def fetch(server: ServerProcess, data: Path, sizes: str, workers: int) -> dict[str, Any]:
    server.control(reset=True)
    command = [
        *inatdl_command(),
        "--data-dir", str(data), "--api-url", server.api_url, "--api-rate", "1000",
        "photos", "fetch", "--size", sizes, "--workers", str(workers),
        "--hourly-limit", BIG_LIMIT, "--daily-limit", BIG_LIMIT,
    ]  # fmt: skip
    result = measure(command)
    if result["rc"] != 0:
        raise SystemExit(f"photos fetch --size {sizes} failed: {result['stderr'][-600:]}")
    stats = server.stats()
    result["api"] = stats["counts"].get("api", 0)
    result["pages"] = sum(stats["pages"].values())
    result["photos"] = stats["counts"].get("photo_get", 0)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=2_000, help="of each of the two taxa")
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    n = args.observations
    taxa = {901: n, 902: n}
    root = Path(tempfile.mkdtemp(prefix="inatdl-sizes-bench-"))
    try:
        with ServerProcess() as server:
            server.control(taxa=taxa, photo_bytes=2_000)
            one = root / "one-walk"
            write_taxa(one, taxa)
            walks = {
                "one walk (`--size square,medium,original`)": [
                    fetch(server, one, ",".join(SIZES), args.workers)
                ]
            }
            three = root / "three-walks"
            write_taxa(three, taxa)
            walks["three walks (one `--size` each)"] = [fetch(server, three, s, args.workers) for s in SIZES]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lines = [
        f"`inatdl photos fetch`, two taxa of {n:,} one-photo observations each (photos of 2 kB), "
        f"`--workers {args.workers}`, benchmarks/server.py without latency, `--api-rate 1000`.",
        "",
        "| way | API requests | observation pages | photo GETs | wall s | CPU s | listing at 1 request/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for way, runs in walks.items():
        api = sum(r["api"] for r in runs)
        lines.append(
            f"| {way} | {api} | {sum(r['pages'] for r in runs)} | {sum(r['photos'] for r in runs):,} | "
            f"{sum(r['wall'] for r in runs):.1f} | {sum(r['cpu'] for r in runs):.1f} | {api} s |"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
