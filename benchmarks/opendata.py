"""The open-data route at scale: sync's columnar copy and a plan of 1,000 taxa on a
synthetic dump, time and peak memory; and the API requests the same job costs on the API.

``python benchmarks/opendata.py [--photos 10000000 1000000] [--keep] [--reuse]``. For each size, a
synthetic dump shaped like iNaturalist's (taxa: a ~1.2-million-row tree, kingdom to
subspecies, ancestry as the real table writes it; observations: half as many rows as
photos, skewed over the species like real ones; photos: two an observation, the dump's
capital licences; observers: 100,000) is written as gzip'd TSV by DuckDB, then measured
with ``measure.py`` (a fresh child each, ``getrusage(RUSAGE_CHILDREN)``):

- *copy*: the columnar copy of the four tables (what `opendata sync` does after its
  downloads; the downloads themselves are the network's business);
- *plan*: `inatdl photos plan OUT.parquet --source open-data` for 1,000 species, writing
  every photo of theirs (no cap), then with `--max-per-taxon 100`.

The API cost is computed, not run: a taxa resolve asks one request a name, and the listing
ceil(observations / 200) pages a query of up to 200 taxa (what `photos fetch` pages), at
iNaturalist's one request a second. Prints a Markdown section. ``--keep`` keeps each size's
folder (its path on stderr); ``--reuse`` measures again in the newest kept folder of each size
instead of writing a new dump (10 million rows take minutes to write).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(SRC))

LISTED = 1_000
SPECIES = 800_000  # with their genera, families ... and 200,000 subspecies: ~1.2 M taxa
OBSERVERS = 100_000

# The tree: every level's parent index is the child's index divided by its fan-out.
TAXA_SQL = """
COPY (
    SELECT 48460 AS taxon_id, NULL AS ancestry, 100.0 AS rank_level, 'stateofmatter' AS rank,
           'Life' AS name, true AS active
    UNION ALL SELECT 100 + i, '48460', 70, 'kingdom', 'Kingdom' || i, true FROM range(4) t(i)
    UNION ALL SELECT 1000 + i, '48460/' || (100 + i // 4), 60, 'phylum', 'Phylum' || i, true
              FROM range(16) t(i)
    UNION ALL SELECT 10000 + i, '48460/' || (100 + i // 40) || '/' || (1000 + i // 10), 50, 'class',
                     'Class' || i, true FROM range(160) t(i)
    UNION ALL SELECT 100000 + i, '48460/' || (100 + i // 400) || '/' || (1000 + i // 100) || '/' ||
                     (10000 + i // 10), 40, 'order', 'Order' || i, true FROM range(1600) t(i)
    UNION ALL SELECT 1000000 + i, '48460/' || (100 + i // 4000) || '/' || (1000 + i // 1000) || '/' ||
                     (10000 + i // 100) || '/' || (100000 + i // 10), 30, 'family', 'Family' || i, true
              FROM range(16000) t(i)
    UNION ALL SELECT 2000000 + i, '48460/' || (100 + i // 40000) || '/' || (1000 + i // 10000) || '/' ||
                     (10000 + i // 1000) || '/' || (100000 + i // 100) || '/' || (1000000 + i // 10), 20,
                     'genus', 'Genus' || i, true FROM range(160000) t(i)
    UNION ALL SELECT 3000000 + i, '48460/' || (100 + i // 200000) || '/' || (1000 + i // 50000) || '/' ||
                     (10000 + i // 5000) || '/' || (100000 + i // 500) || '/' || (1000000 + i // 50) || '/' ||
                     (2000000 + i // 5), 10, 'species', 'Genus' || (i // 5) || ' species' || i, i % 50 != 7
              FROM range({species}) t(i)
    UNION ALL SELECT 5000000 + i, '48460/' || (100 + i // 50000) || '/' || (1000 + i // 12500) || '/' ||
                     (10000 + i // 1250) || '/' || (100000 + i // 125) || '/' || (1000000 + i // 12) || '/' ||
                     (2000000 + i * 4 // 5 // 5) || '/' || (3000000 + i * 4), 5, 'subspecies',
                     'Genus' || (i * 4 // 5) || ' species' || (i * 4) || ' ssp' || i, true
              FROM range({species} // 4) t(i)
) TO '{out}/taxa.csv.gz' (DELIMITER '\t', HEADER, COMPRESSION gzip)
"""

# Species drawn with a skew (a few very observed, a long tail), some subspecies and genera.
OBSERVATIONS_SQL = """
COPY (
    SELECT printf('%08x-0000-4000-8000-%012x', i, i) AS observation_uuid,
           hash(i, 'observer') % {observers} AS observer_id,
           (hash(i, 'lat') % 1800000) / 10000.0 - 90 AS latitude,
           (hash(i, 'lng') % 3600000) / 10000.0 - 180 AS longitude,
           CASE WHEN i % 3 = 0 THEN NULL ELSE hash(i, 'acc') % 5000 END AS positional_accuracy,
           CASE WHEN i % 10 = 0 THEN 5000000 + (hash(i, 'ssp') % ({species} // 4))
                WHEN i % 10 = 1 THEN 2000000 + (hash(i, 'genus') % 160000)
                ELSE 3000000
                     + CAST(floor(pow((hash(i, 'sp') % 1000000) / 1000000.0, 3) * {species}) AS BIGINT)
           END AS taxon_id,
           ['research', 'needs_id', 'casual'][1 + i % 3] AS quality_grade,
           DATE '2010-01-01' + CAST(hash(i, 'day') % 5800 AS INTEGER) AS observed_on,
           1.0 AS anomaly_score
    FROM range({observations}) t(i)
) TO '{out}/observations.csv.gz' (DELIMITER '\t', HEADER, COMPRESSION gzip)
"""

PHOTOS_SQL = """
COPY (
    SELECT printf('%08x-1111-4000-8000-%012x', i, i) AS photo_uuid,
           i + 1 AS photo_id,
           printf('%08x-0000-4000-8000-%012x', i // 2, i // 2) AS observation_uuid,
           hash(i // 2, 'observer') % {observers} AS observer_id,
           ['jpg', 'jpeg', 'png', 'jpg'][1 + i % 4] AS extension,
           ['CC-BY-NC', 'CC-BY', 'CC0', 'CC-BY-SA', 'CC-BY-NC-SA', 'CC-BY-ND', 'CC-BY-NC-ND', 'PD'][1 + i % 8]
               AS license,
           2048 AS width, 1536 AS height, i % 2 AS position
    FROM range({photos}) t(i)
) TO '{out}/photos.csv.gz' (DELIMITER '\t', HEADER, COMPRESSION gzip)
"""

OBSERVERS_SQL = """
COPY (
    SELECT i AS observer_id, 'login' || i AS login,
           CASE WHEN i % 3 = 0 THEN NULL ELSE 'Name ' || i END AS name
    FROM range({observers}) t(i)
) TO '{out}/observers.csv.gz' (DELIMITER '\t', HEADER, COMPRESSION gzip)
"""

# The job: the 1,000 most observed species; its observations with photos, per query of 200.
LISTED_SQL = """
SELECT taxon_id, count(*) AS n FROM read_parquet($observations)
WHERE taxon_id BETWEEN 3000000 AND 4999999 GROUP BY taxon_id ORDER BY n DESC, taxon_id LIMIT $listed
"""


def generate(folder: Path, photos: int) -> float:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect(config={"memory_limit": "1GB", "threads": 2})
    values = {"out": folder, "species": SPECIES, "observers": OBSERVERS, "photos": photos,
              "observations": photos // 2}  # fmt: skip
    for sql in (TAXA_SQL, OBSERVERS_SQL, OBSERVATIONS_SQL, PHOTOS_SQL):
        con.execute(sql.format(**values))
    con.close()
    return time.perf_counter() - started


def measure(*argv: str) -> dict[str, float]:
    """``argv`` measured in a fresh child that imports this tree's inatdl (not an installed one)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, str(HERE / "measure.py"), "--", *argv]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    result = json.loads(done.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"{argv} failed: {result['stderr']}")
    return result  # type: ignore[no-any-return]


COPY_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {src!r})
from inatdl.opendata.columnar import make_copy
notes = {{"taxa": "1", "observations": "1", "photos": "1", "observers": "1"}}
make_copy(Path({folder!r}), notes, "2026-11-27")
"""


def listed_taxa(folder: Path) -> list[tuple[int, int]]:
    import duckdb

    from inatdl.opendata.columnar import require_copy

    copy = require_copy(folder)
    con = duckdb.connect()
    params = {"observations": str(copy.parquet("observations")), "listed": LISTED}
    return [(int(t), int(n)) for t, n in con.execute(LISTED_SQL, params).fetchall()]


def api_cost(listed: list[tuple[int, int]]) -> tuple[int, int]:
    """(requests, of which listing pages) for `taxa resolve` + `photos fetch` on the API."""
    pages = 0
    for start in range(0, len(listed), 200):
        pages += math.ceil(sum(n for _, n in listed[start : start + 200]) / 200)
    return len(listed) + pages, pages


def kept_work(photos: int) -> Path:
    """The newest folder ``--keep`` left for this size, with its four tables written."""
    folders = Path(tempfile.gettempdir()).glob(f"inatdl-opendata-{photos}-*")
    kept = sorted((p for p in folders if _whole(p / "open-data")), key=lambda p: p.stat().st_mtime)
    if not kept:
        raise SystemExit(f"--reuse: no kept dump of {photos:,} photo rows; run once with --keep")
    return kept[-1]


def _whole(folder: Path) -> bool:
    names = ("taxa", "observations", "photos", "observers")
    return all((folder / f"{name}.csv.gz").exists() for name in names)


def run_size(photos: int, keep: bool, reuse: bool = False) -> dict[str, object]:
    work = kept_work(photos) if reuse else Path(tempfile.mkdtemp(prefix=f"inatdl-opendata-{photos}-"))
    keep = keep or reuse
    try:
        folder = work / "open-data"
        folder.mkdir(exist_ok=reuse)
        generated = 0.0 if reuse else generate(folder, photos)
        gz_bytes = sum(p.stat().st_size for p in folder.glob("*.csv.gz"))
        copy = measure(sys.executable, "-c", COPY_SCRIPT.format(src=str(SRC), folder=str(folder)))
        parquet_bytes = sum(p.stat().st_size for p in folder.glob("columnar-*/*.parquet"))
        listed = listed_taxa(folder)
        data = work / "data"
        data.mkdir(exist_ok=reuse)
        rows = "".join(f"name {t},{t},Taxon {t},species,exact,{n}\n" for t, n in listed)
        (data / "taxa.csv").write_text("input_name,taxon_id,name,rank,match,observations_count\n" + rows)
        command = [sys.executable, "-m", "inatdl", "--data-dir", str(data), "--open-data-dir", str(folder),
                   "photos", "plan", "--source", "open-data"]  # fmt: skip
        plan = measure(*command, str(work / "plan.parquet"))
        capped = measure(*command, str(work / "capped.parquet"), "--max-per-taxon", "100")
        said = str(plan["stdout"])
        planned = int(said.split(": ", 1)[1].split(" photos")[0].replace(",", ""))
        requests, pages = api_cost(listed)
        return {
            "photos": photos, "generated_s": generated, "gz_bytes": gz_bytes, "parquet_bytes": parquet_bytes,
            "copy": copy, "plan": plan, "capped": capped, "planned": planned,
            "observations_listed": sum(n for _, n in listed), "api_requests": requests, "api_pages": pages,
        }  # fmt: skip
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)


def report(results: list[dict[str, object]]) -> str:
    lines = [
        "## The open-data route (benchmarks/opendata.py)",
        "",
        "Synthetic dump: taxa ~1.2 M rows (kingdom to subspecies, real ancestry format), observers 100,000,"
        " observations = photos / 2 skewed over 800,000 species. DuckDB memory limit 256 MB, 2 threads,"
        " the plan file written 10,000 rows at a time."
        " Plan: 1,000 most observed species, every photo (no cap), then `--max-per-taxon 100`.",
        "",
        "| photo rows | .csv.gz | Parquet | copy s | copy peak RSS MB | plan s | plan peak RSS MB "
        "| photos planned | capped plan s | capped peak RSS MB "
        "| API requests for the same job (pages) | at 1/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        copy, plan, capped = r["copy"], r["plan"], r["capped"]
        hours = int(r["api_requests"]) / 3600  # type: ignore[call-overload]
        lines.append(
            f"| {r['photos']:,} | {int(r['gz_bytes']) / 1e6:,.0f} MB "  # type: ignore[call-overload]
            f"| {int(r['parquet_bytes']) / 1e6:,.0f} MB "  # type: ignore[call-overload]
            f"| {copy['wall']:.1f} | {copy['maxrss_kb'] / 1024:,.0f} | {plan['wall']:.1f} "  # type: ignore[index]
            f"| {plan['maxrss_kb'] / 1024:,.0f} | {r['planned']:,} | {capped['wall']:.1f} "  # type: ignore[index]
            f"| {capped['maxrss_kb'] / 1024:,.0f} | {r['api_requests']:,} ({r['api_pages']:,}) "  # type: ignore[index]
            f"| {hours:.1f} h |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--keep", action="store_true", help="keep each size's dump (path on stderr)")
    parser.add_argument("--reuse", action="store_true", help="measure again on the newest kept dumps")
    args = parser.parse_args()
    results = [run_size(n, args.keep, args.reuse) for n in args.photos]
    print(report(results))


if __name__ == "__main__":
    main()
