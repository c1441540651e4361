"""Time and peak memory of `inatdl records fetch` for 100,000 observations.

    python benchmarks/records.py [--observations 100000] [--new 1000] [--keep]

Runs against benchmarks/server.py (its own process; observations of ~5 kB, as real ones
with a description, 200 a page = ~1 MB of JSON a page) with `--api-rate 1000`, each
command in a fresh measuring child (measure.py: wall, CPU, peak RSS):

- the first fetch of one taxon of N observations, as records.csv;
- a rerun with nothing new (one page asked; the file read and rewritten whole);
- a rerun after ``--new`` observations arrive;
- the first fetch as records.parquet, in another data dir.

Prints a Markdown table. At iNaturalist's pace of 1 request a second the pages alone take
N / 200 seconds (500 s for 100,000), so the figures here are inatdl's own cost on top.
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

from run import PER_PAGE, inatdl_command, measure, write_taxa  # noqa: E402
from server import ServerProcess  # noqa: E402

TAXON = 901


def fetch(server: ServerProcess, data: Path, *extra: str) -> dict[str, Any]:
    server.control(reset=True)
    command = [*inatdl_command(), "--data-dir", str(data), "--api-url", server.api_url, "--api-rate", "1000"]
    result = measure([*command, "records", "fetch", *extra])
    if result["rc"] != 0:
        raise SystemExit(f"records fetch failed: {result['stderr'][-600:]}")
    result["pages"] = sum(server.stats()["pages"].values())
    return result


def row(label: str, result: dict[str, Any], path: Path, records: int) -> str:
    return (
        f"| {label} | {records:,} | {result['pages']} | {result['wall']:.1f} | {result['cpu']:.1f} | "
        f"{result['maxrss_kb'] / 1024:.0f} | {path.stat().st_size / 1e6:.1f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=1_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dirs")
    args = parser.parse_args()
    n, new = args.observations, args.new
    root = Path(tempfile.mkdtemp(prefix="inatdl-records-bench-"))
    lines = [
        f"`inatdl records fetch` of one taxon of {n:,} observations (~5 kB of JSON each, "
        f"{PER_PAGE} a page), benchmarks/server.py, `--api-rate 1000`; a fresh child per command.",
        "",
        "| run | records | pages | wall s | CPU s | peak RSS MB | file MB |",
        "|---|---|---|---|---|---|---|",
    ]
    try:
        with ServerProcess() as server:
            server.control(taxa={TAXON: n}, obs_bytes=5_000)
            data = root / "csv"
            write_taxa(data, {TAXON: n})
            csv_file = data / "records.csv"
            lines.append(row("first fetch, csv", fetch(server, data), csv_file, n))
            lines.append(row("rerun, nothing new", fetch(server, data), csv_file, n))
            server.control(taxa={TAXON: n + new})
            lines.append(row(f"rerun, {new:,} new", fetch(server, data), csv_file, n + new))
            server.control(taxa={TAXON: n})
            data = root / "parquet"
            write_taxa(data, {TAXON: n})
            result = fetch(server, data, "--format", "parquet")
            lines.append(row("first fetch, parquet", result, data / "records.parquet", n))
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
