"""How long the first fetch on a large data dir of an earlier release spends upgrading it.

    python benchmarks/state_upgrade.py [PHOTOS]     # default 1,000,000

Writes a state file of version 1 holding PHOTOS downloaded photos (rows shaped like real
ones: open-data URLs, attributions, coordinates), then opens it with today's Store, which
runs migrations.MIGRATIONS in one transaction (version 2 rebuilds the photos table). Reported:
the upgrade's wall time, the file's size before and after, and the peak RSS of the process.
"""

from __future__ import annotations

import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from inatdl import migrations, state
from inatdl.clock import Clock


def old_state(path: Path, photos: int) -> None:
    """A version 1 state file of ``photos`` rows, as the first release wrote them."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(migrations.SCHEMA_V1)
    db.execute("INSERT INTO meta VALUES ('app', 'inatdl'), ('schema_version', '1')")
    columns = (
        "photo_id, size, status, taxon_id, taxon_name, observation_id, observed_taxon_id, "
        "observed_taxon_name, url, path, license_code, attribution, observer, quality_grade, latitude, "
        "longitude, observed_on, observation_url, query, bytes, attempts, updated_at"
    )
    rows = (
        (
            i, "medium", "done", 1000 + i % 500, f"Taxon {i % 500}", 10_000_000 + i // 2, 1000 + i % 500,
            f"Taxon {i % 500}", f"https://inaturalist-open-data.s3.amazonaws.com/photos/{i}/medium.jpg",
            f"photos/Taxon_{i % 500}/{i}_medium.jpg", "cc-by",
            f"(c) observer{i % 997}, some rights reserved (CC BY)", f"observer{i % 997}", "research",
            38.4 + i % 1000 / 1e4, -9.1 - i % 1000 / 1e4, "2023-05-01",
            f"https://www.inaturalist.org/observations/{10_000_000 + i // 2}",
            "photo_license=cc-by&size=medium", 150_000 + i % 50_000, 1, 1.7e9,
        )
        for i in range(photos)
    )  # fmt: skip
    marks = ", ".join("?" * len(columns.split(", ")))
    db.execute("BEGIN")
    db.executemany(f"INSERT INTO photos ({columns}) VALUES ({marks})", rows)
    db.execute("COMMIT")
    db.close()


def main(photos: int) -> None:
    with tempfile.TemporaryDirectory(prefix="state-upgrade-") as tmp:
        path = Path(tmp) / "state.sqlite"
        old_state(path, photos)
        before = path.stat().st_size
        started = time.perf_counter()
        state.Store(path, Clock()).close()
        took = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        after = path.stat().st_size
        print(f"| {photos:,} | {took:.1f} | {before / 1e6:,.0f} | {after / 1e6:,.0f} | {peak:,.0f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
