"""Time and peak memory of `inatdl dataset export` in each format, against plain `tar`.

``python benchmarks/export.py [--photos 100000] [--compare 10000] [--photo-bytes 20000] [--keep]``.
Builds a synthetic data dir in a temporary folder (photos.csv as `photos fetch` writes it,
a photo a file of random, incompressible bytes like a JPEG's: hard links to UNIQUE files,
so that building 100,000 photos does not take longer than the runs), then measures with
``measure.py`` (a fresh child each, ``getrusage(RUSAGE_CHILDREN)``), at ``--compare`` photos
and at ``--photos`` (memory must stay flat as the count grows tenfold):

- `tar -cf` of the same photo files: the machine's own speed, the mark for the shards;
- the first export with three splits as imagefolder (hard links), webdataset, parquet;
- the same export again into the same folders (nothing to do);
- an update after 1% new photos arrive (imagefolder and webdataset);
- for comparison, the start of `photos fetch --help`, which must load neither pandas nor pyarrow.

"peak RSS" is the largest process's (the shards are written by forked worker processes, one
a core); "all processes" is the highest sampled sum of every process's PSS (measure.py).

Prints Markdown tables; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = (
    "photo_id", "observation_id", "taxon_id", "taxon_name", "observed_taxon_id",
    "observed_taxon_name", "size", "path", "url", "license_code", "attribution", "observer",
    "quality_grade", "latitude", "longitude", "observed_on", "observation_url", "bytes",
)  # fmt: skip
LICENSES = ("cc-by", "cc-by-nc", "cc0", "cc-by-sa", "cc-by-nd", "cc-by-nc-sa", "cc-by-nc-nd")
TAXA = 120
FORMATS = ("imagefolder", "webdataset", "parquet")
SPLIT = "train=0.8,validation=0.1,test=0.1"


UNIQUE = 1_000  # distinct photo files: more than a Parquet page or a snappy window holds


def build(data: Path, photos: int, photo_bytes: int, first_observation: int = 1) -> None:
    """Add ``photos`` photos (two an observation, spread over TAXA taxa) to the data dir."""
    pool = data.parent / f"pool-{photo_bytes}"
    if not pool.exists():
        pool.mkdir()
        for i in range(UNIQUE):
            (pool / f"{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(photo_bytes - 6) + b"\xff\xd9")
    rows = []
    for n in range(photos):
        observation = first_observation + n // 2
        photo_id = observation * 10 + n % 2
        taxon = observation % TAXA
        name = f"Taxon number{taxon}"
        path = f"photos/Taxon_number{taxon}/{photo_id}_medium.jpg"
        (data / path).parent.mkdir(parents=True, exist_ok=True)
        os.link(pool / f"{photo_id % UNIQUE}.jpg", data / path)
        licence = LICENSES[photo_id % len(LICENSES)]
        observer = f"observer{observation % 997}"
        rows.append(
            [photo_id, observation, 1000 + taxon, name, 1000 + taxon, name, "medium", path,
             f"https://static.example/photos/{photo_id}/medium.jpg", licence,
             f"(c) {observer}, some rights reserved ({licence.upper()})", observer, "research",
             50.1, -104.7, "2020-08-27", f"https://www.inaturalist.org/observations/{observation}",
             photo_bytes]
        )  # fmt: skip
    manifest = data / "photos.csv"
    new = not manifest.exists()
    with manifest.open("a", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        if new:
            writer.writerow(COLUMNS)
        writer.writerows(rows)


def measure(*command: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, str(HERE / "measure.py"), "--", *command], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result['stderr']}")
    return result


def runs_at(
    root: Path, photos: int, photo_bytes: int, first_only: bool
) -> list[tuple[str, dict[str, float]]]:
    """Every measurement at ``photos`` photos, in a data dir of its own."""
    data = root / f"data-{photos}"
    data.mkdir()
    build(data, photos, photo_bytes)
    inatdl = [sys.executable, "-m", "inatdl", "--data-dir", str(data)]
    runs = []
    tar = root / f"plain-{photos}.tar"
    runs.append(
        (
            f"`tar -cf` of the {photos:,} photo files",
            measure("tar", "--hard-dereference", "-cf", str(tar), "-C", str(data), "photos"),
        )
    )
    tar.unlink()
    exports = {
        f: [*inatdl, "dataset", "export", str(root / f"{f}-{photos}"), "--split", SPLIT, "--format", f]
        for f in FORMATS
    }
    for format_, command in exports.items():
        runs.append((f"{format_}: first export", measure(*command)))
    for format_, command in exports.items() if not first_only else ():
        runs.append((f"{format_}: the same export again", measure(*command)))
    build(data, photos // 100, photo_bytes, first_observation=10**7)
    for format_ in ("imagefolder", "webdataset") if not first_only else ():
        runs.append((f"{format_}: update, {photos // 100:,} new photos", measure(*exports[format_])))
    for format_ in FORMATS:
        shutil.rmtree(root / f"{format_}-{photos}")
    shutil.rmtree(data)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--compare", type=int, default=10_000, help="a smaller count, for memory's flatness")
    parser.add_argument("--photo-bytes", type=int, default=20_000)
    parser.add_argument("--first-only", action="store_true", help="only the first exports (memory, speed)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="inatdl-export-bench-"))
    try:
        fetch_help = measure(sys.executable, "-m", "inatdl", "photos", "fetch", "-h")
        rss = fetch_help["maxrss_kb"] / 1024
        print(f"`photos fetch --help`: {fetch_help['wall']:.2f} s, {rss:.0f} MB peak RSS\n")
        for photos in (args.compare, args.photos):
            runs = runs_at(root, photos, args.photo_bytes, args.first_only)
            megabytes = photos * args.photo_bytes / 1e6
            tar_wall = runs[0][1]["wall"]
            print(f"{photos:,} photos of {args.photo_bytes:,} bytes ({megabytes:,.0f} MB)\n")
            print("| run | wall s | CPU s | peak RSS MB | all processes MB | MB/s | speed vs `tar` |")
            print("|---|---:|---:|---:|---:|---:|---:|")
            for label, run in runs:
                speed = f"{megabytes / run['wall']:,.0f}"
                print(
                    f"| {label} | {run['wall']:.2f} | {run['cpu']:.2f} | {run['maxrss_kb'] / 1024:.0f} "
                    f"| {run['tree_pss_kb'] / 1024:.0f} | {speed} | {tar_wall / run['wall']:.0%} |"
                )
            print()
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
