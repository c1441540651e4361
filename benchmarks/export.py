"""Time and peak memory of `inatdl dataset export` on 36,000 photos (hard links).

``python benchmarks/export.py [--photos 36000] [--keep]``. Builds a synthetic data dir in a
temporary folder (photos.csv as `photos fetch` writes it, and one small file a photo:
the export never reads photo bytes, so their size does not matter), then measures with
``measure.py`` (a fresh child each, ``getrusage(RUSAGE_CHILDREN)``):

- the first export with three splits (hard links);
- the same export again into the same folder (nothing to do);
- an update after 1,000 new photos arrive and 100 files leave the data dir;
- for comparison, the start of `photos fetch --help`, which must not load pandas.

Prints a Markdown table; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import csv
import json
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
PHOTO = b"\xff\xd8\xff\xe0" + bytes(2_000) + b"\xff\xd9"


def build(data: Path, photos: int, first_observation: int = 1) -> None:
    """Add ``photos`` photos (two an observation, spread over TAXA taxa) to the data dir."""
    rows = []
    for n in range(photos):
        observation = first_observation + n // 2
        photo_id = observation * 10 + n % 2
        taxon = observation % TAXA
        name = f"Taxon number{taxon}"
        path = f"photos/Taxon_number{taxon}/{photo_id}_medium.jpg"
        (data / path).parent.mkdir(parents=True, exist_ok=True)
        (data / path).write_bytes(PHOTO)
        licence = LICENSES[photo_id % len(LICENSES)]
        observer = f"observer{observation % 997}"
        rows.append(
            [photo_id, observation, 1000 + taxon, name, 1000 + taxon, name, "medium", path,
             f"https://static.example/photos/{photo_id}/medium.jpg", licence,
             f"(c) {observer}, some rights reserved ({licence.upper()})", observer, "research",
             50.1, -104.7, "2020-08-27", f"https://www.inaturalist.org/observations/{observation}",
             len(PHOTO)]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=36_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="inatdl-export-bench-"))
    try:
        data, out = root / "data", root / "dataset"
        data.mkdir()
        build(data, args.photos)
        inatdl = [sys.executable, "-m", "inatdl", "--data-dir", str(data)]
        export = [*inatdl, "dataset", "export", str(out), "--split", "train=0.8,validation=0.1,test=0.1"]
        runs = [(f"first export, {args.photos:,} photos, hard links", measure(*export))]
        runs.append(("the same export again (nothing to do)", measure(*export)))
        build(data, 1_000, first_observation=10**6)
        for path in sorted((data / "photos").rglob("*.jpg"))[:100]:
            path.unlink()
        runs.append(("update: 1,000 new photos, 100 gone", measure(*export)))
        fetch_help = measure(*inatdl, "photos", "fetch", "-h")
        runs.append(("`photos fetch --help` (no pandas), for comparison", fetch_help))
        linked = sum(1 for p in out.rglob("*.jpg") if p.stat().st_nlink > 1)
        print("| run | wall s | CPU s | peak RSS MB |")
        print("|---|---:|---:|---:|")
        for label, run in runs:
            print(f"| {label} | {run['wall']:.2f} | {run['cpu']:.2f} | {run['maxrss_kb'] / 1024:.0f} |")
        print(f"\n{linked:,} exported photos are hard links to the data dir's files.")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
