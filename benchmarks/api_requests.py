"""API requests of typical `photos fetch` jobs, before and after batching taxa in one query.

    python benchmarks/api_requests.py [--before de73ba9] [--output benchmarks/api_requests.md]

Under iNaturalist's policy (about 1 request a second, 10,000 a day) the API requests are
what a job costs. Each job runs against tests/inat_server.py (the loopback fake API of the
tests) as `inatdl photos fetch --dry-run` in a child process, once with this checkout's
code and once with the code of --before (extracted with `git archive`), then again as a
rerun of the finished job. The dry run pages exactly as a real run does (it keeps the
listing and downloads nothing), so the counts are those of the real job; it also sends a
few HEAD requests to the photo hosts, which are not API requests and are not counted.
Simulated time is the requests at 1 request a second, the pace inatdl keeps by default.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from inat_server import InatServer  # noqa: E402

PLACE = 128892
PER_PAGE = 200


@dataclass
class Job:
    """A world on the server, the taxa.csv of the job, and its extra options."""

    name: str
    taxa: list[tuple[int, str]]
    observations: int  # that the job lists (under its filters)
    options: tuple[str, ...] = ()


def _tree(inat: InatServer) -> None:
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(2, "Lythrum", rank="genus", parent_id=1)
    inat.photo_size_bytes = {"square": 200}


def _interleaved(inat: InatServer, counts: dict[int, int], first_id: int, seed: int, **kw: object) -> None:
    """Observations of several taxa with ids mixed, as on iNaturalist."""
    labels = [taxon_id for taxon_id, n in counts.items() for _ in range(n)]
    random.Random(seed).shuffle(labels)
    for i, taxon_id in enumerate(labels):
        inat.add_observations(taxon_id, 1, first_id=first_id + i, **kw)  # type: ignore[arg-type]


def eight_small_taxa(inat: InatServer) -> Job:
    """The issue's 8 Lythrum taxa, 902 observations, a species and its variety among them."""
    _tree(inat)
    counts = {11: 300, 12: 200, 13: 150, 14: 100, 15: 60, 16: 40, 17: 30, 18: 22}
    for taxon_id in counts:
        if taxon_id != 18:
            inat.add_taxon(taxon_id, f"Lythrum species{taxon_id}", parent_id=2)
    inat.add_taxon(18, "Lythrum species13 variety", rank="variety", parent_id=13)
    _interleaved(inat, counts, 1000, seed=1)
    taxa = [(t, f"Lythrum species{t}") for t in counts]
    return Job("(a) 8 small taxa", taxa, sum(counts.values()))


def rare_species(inat: InatServer) -> Job:
    """200 rare species of 1 to 20 observations each."""
    _tree(inat)
    rng = random.Random(2)
    counts = {100 + i: rng.randint(1, 20) for i in range(200)}
    for taxon_id in counts:
        inat.add_taxon(taxon_id, f"Rara species{taxon_id}", parent_id=2)
    _interleaved(inat, counts, 10_000, seed=2)
    taxa = [(t, f"Rara species{t}") for t in counts]
    return Job("(b) 200 rare species, ≤ 20 observations each", taxa, sum(counts.values()))


def one_big_taxon(inat: InatServer) -> Job:
    """One taxon of 25,000 observations."""
    _tree(inat)
    inat.add_taxon(10, "Lythrum salicaria", parent_id=2)
    inat.add_observations(10, 25_000, first_id=1)
    return Job("(c) one taxon of 25,000 observations", [(10, "Lythrum salicaria")], 25_000)


def a_place(inat: InatServer) -> Job:
    """60 species observed in a place (10 to 80 observations there each) and as many elsewhere."""
    _tree(inat)
    rng = random.Random(4)
    inside = {300 + i: rng.randint(10, 80) for i in range(60)}
    for taxon_id in inside:
        inat.add_taxon(taxon_id, f"Loca species{taxon_id}", parent_id=2)
    _interleaved(inat, inside, 100_000, seed=4, place_ids=(PLACE,))
    _interleaved(inat, inside, 200_000, seed=5, place_ids=(1,))
    taxa = [(t, f"Loca species{t}") for t in inside]
    return Job("(d) a place with 60 species", taxa, sum(inside.values()), ("--place-id", str(PLACE)))


JOBS: list[Callable[[InatServer], Job]] = [eight_small_taxa, rare_species, one_big_taxon, a_place]


def write_taxa(data_dir: Path, taxa: list[tuple[int, str]]) -> None:
    """taxa.csv written directly, as `taxa resolve` or `taxa observed` would."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "taxa.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["input_name", "taxon_id", "name", "rank", "match", "observations_count"])
        writer.writerows([name, taxon_id, name, "species", "exact", ""] for taxon_id, name in taxa)


def fetch(src: Path, inat: InatServer, data_dir: Path, options: tuple[str, ...]) -> tuple[int, int]:
    """(API requests, observation pages) of one `photos fetch --dry-run` with the code in ``src``."""
    inat.clear_requests()
    command = [
        sys.executable, "-m", "inatdl", "--data-dir", str(data_dir), "--api-url", inat.api_url,
        "--api-rate", "1000", "photos", "fetch", "--size", "square", "--dry-run", *options,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(src)}
    child = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{child.stderr}")
    pages = [r for r in inat.requests_to("/v1/observations") if r.status == 200]
    return len(inat.api_requests()), len(pages)


def _time(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="de73ba9", help="the git commit to compare with")
    parser.add_argument("--output", type=Path, default=HERE / "api_requests.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="inatdl-requests-") as tmp:
        before_src = Path(tmp) / "before"
        before_src.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "src"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(before_src)], input=archive.stdout, check=True)
        for make in JOBS:
            with InatServer() as inat:
                job = make(inat)
                print(f"{job.name}: {len(job.taxa)} taxa, {job.observations:,} observations", file=sys.stderr)
                counts = {}
                for label, src in (("before", before_src / "src"), ("after", ROOT / "src")):
                    data_dir = Path(tmp) / f"{make.__name__}-{label}"
                    write_taxa(data_dir, job.taxa)
                    counts[label] = (
                        fetch(src, inat, data_dir, job.options),
                        fetch(src, inat, data_dir, job.options),
                    )
                rows.append((job, counts))
    ideal = "ceil(observations / 200)"
    lines = [
        f"API requests of `photos fetch` jobs: before (commit {args.before}) and after batching.",
        f"Counted by the loopback server; time at 1 request a second. Ideal pages for a job: {ideal}.",
        "",
        "| job | taxa | observations | ideal pages | requests before | time before "
        "| requests after | time after | rerun before | rerun after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for job, counts in rows:
        (before, rerun_before), (after, rerun_after) = counts["before"], counts["after"]
        lines.append(
            f"| {job.name} | {len(job.taxa)} | {job.observations:,} "
            f"| {math.ceil(job.observations / PER_PAGE)} "
            f"| {before[0]:,} | {_time(before[0])} | {after[0]:,} | {_time(after[0])} "
            f"| {rerun_before[0]:,} | {rerun_after[0]:,} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
