"""CPU a photo of the download path alone, against the test server (which gives ETags).

    python benchmarks/download_cpu.py [BYTES]
    PYTHONPATH=/path/to/other/checkout/src python benchmarks/download_cpu.py [BYTES]

One thread downloads 600 photos of BYTES (default 130,000) through inatdl's Downloader, in
batches of 100; the median CPU ms a photo of that thread (user + system, so the file
system calls count) over the batches after the first is printed. Run it alternately on two
checkouts to compare them: the per-photo path's cost, the .part.info included, which
benchmarks/budget.py's server leaves out (it gives no ETag).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import requests  # noqa: E402
from fakes import FakeClock  # noqa: E402
from inat_server import InatServer  # noqa: E402

import inatdl  # noqa: E402
from inatdl.budget import ByteBudget  # noqa: E402
from inatdl.download import Downloader  # noqa: E402
from inatdl.state import PhotoJob, Store  # noqa: E402

PHOTOS, BATCH = 600, 100


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 130_000
    with InatServer() as inat:
        inat.add_taxon(1, "Plantae", rank="kingdom")
        inat.add_taxon(10, "Lythrum salicaria", parent_id=1)
        inat.add_observations(10, PHOTOS, first_id=1000)
        inat.photo_size_bytes["medium"] = size
        data = Path(tempfile.mkdtemp(prefix="inatdl-cpu-"))
        clock = FakeClock()
        budget = ByteBudget(Store(data / "state.sqlite", clock), clock, 10**12, 10**12)
        downloader = Downloader(
            requests.Session(), data, budget, clock, threading.Event(), timeout=(5.0, 5.0)
        )
        ids = [(1000 + i) * 10 for i in range(PHOTOS)]
        jobs = [
            PhotoJob(i, "medium", inat.photo_url(i, "medium"), f"photos/x/{i}_medium.jpg", 10) for i in ids
        ]
        batches = []
        for start in range(0, PHOTOS, BATCH):
            began = time.thread_time()
            for job in jobs[start : start + BATCH]:
                assert downloader.download(job).status == "done"
            batches.append(1000 * (time.thread_time() - began) / BATCH)
    code = Path(inatdl.__file__).resolve().parent.parent
    print(f"{code}: {size} B photos, {statistics.median(batches[1:]):.3f} CPU ms a photo (median)")


if __name__ == "__main__":
    main()
