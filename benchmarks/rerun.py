"""Time and peak memory of a rerun of a finished `inatdl photos fetch` at 100k and 1M photos.

``python benchmarks/rerun.py [--photos 100000 1000000] [--before SRC [--interleave]] [--tries 2]
[--keep DIR]``.

Downloading a million photos to build the finished job would take hours, so the data dir is
synthesised with the library's own calls: a real `photos fetch` of a few photos from the
benchmark server (benchmarks/server.py) makes the state, taxa.csv and photos.csv, then
``Store.record_page`` lists the rest of the taxon's photos (PhotoRecords copied from a real
one, ids changed) with the cursor at its last observation, ``Store.record`` marks them
downloaded, and each gets an empty file under its final name (a rerun reads the names in
photos/, never the bytes). The data dirs go to a memory-backed folder (/dev/shm) when there
is one: creating a million files on a busy disk takes hours. What is measured is the real
command, `inatdl photos fetch --size square` against the server, which answers the one page
a query asks (no observation above the cursor) and would serve any photo asked for: a
rerun that decides there is nothing to do. ``--before SRC`` also runs it with the code of
another checkout's src/ (``PYTHONPATH``) on the same data dir, first (a rerun by this
checkout after one by older code writes photos.csv once: it has no record of that file);
with ``--interleave`` each code builds its own data dir instead and the two rerun in turn,
try after try (code older than the state's upgrade, such as 30a1ab4, cannot read the newer
state). Each rerun by
``measure.py`` (a fresh child: wall, CPU, peak RSS); the server's counts show that no
photo was asked for.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(HERE))

from server import OBS_STRIDE, ServerProcess  # noqa: E402

TAXON = 4242
SEED_PHOTOS = 20  # downloaded for real: the template of every synthesised row
PHOTO_BYTES = 30  # the seed photos' size on the server
TAXA_HEADER = "input_name,taxon_id,name,rank,match,observations_count\n"
BATCH = 20_000


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fetch_command(server: ServerProcess, data: Path) -> list[str]:
    return [
        sys.executable, "-m", "inatdl", "--data-dir", str(data), "--api-url", server.api_url,
        "--api-rate", "1000", "photos", "fetch", "--size", "square", "--workers", "16",
        "--hourly-limit", "1000GB", "--daily-limit", "1000GB",
    ]  # fmt: skip


def run_env(src: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INATDL_")}
    env["PYTHONPATH"] = str(src)
    return env


def measure(command: list[str], src: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(HERE / "measure.py"), "--", *command],
        capture_output=True, text=True, check=True, env=run_env(src),
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"the rerun failed: {result['stderr']}")
    return result


def build(server: ServerProcess, data: Path, photos: int, src: Path) -> None:
    """A finished job of ``photos`` square photos of one taxon in ``data``, made by the
    code in ``src`` (the older code, when two are compared: the newer upgrades its state)."""
    data.mkdir(parents=True)
    name = f"Benchmarkia species{TAXON}"
    (data / "taxa.csv").write_text(f"{TAXA_HEADER}{name.lower()},{TAXON},{name},species,exact,{photos}\n")
    server.control(reset=True, latency_ms=0, photo_bytes=PHOTO_BYTES, taxa={str(TAXON): SEED_PHOTOS})
    subprocess.run(fetch_command(server, data), check=True, capture_output=True, env=run_env(src))
    command = [sys.executable, __file__, "--synthesise", str(data), str(photos)]
    subprocess.run(command, check=True, env=run_env(src))
    server.control(taxa={str(TAXON): photos})  # the page above the cursor: empty
    subprocess.run(fetch_command(server, data), check=True, capture_output=True, env=run_env(src))


def synthesise(data: Path, photos: int) -> None:
    """List and mark downloaded the rest of the photos, with the inatdl on PYTHONPATH."""
    from inatdl.clock import Clock
    from inatdl.state import DONE, Cursor, Outcome, PhotoJob, Store

    store = Store(data / "state.sqlite", Clock())
    try:
        template, folder, query = _template(store)
        first = TAXON * OBS_STRIDE + 1
        for start in range(first + SEED_PHOTOS, first + photos, BATCH):
            ids = range(start, min(start + BATCH, first + photos))
            rows = [_copy(template, i, folder) for i in ids]
            store.record_page([Cursor(query, TAXON, ids[-1])], rows)
            for row in rows:
                _write(os.path.join(data, row.path))
                job = PhotoJob(row.photo_id, row.size, row.url, row.path, TAXON)
                store.record(Outcome(job, DONE, attempts=1))
            store.flush()
            say(f"  {ids[-1] - first + 1:,} of {photos:,} photos")
    finally:
        store.close()


def _write(path: str) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))


def _template(store: Any) -> tuple[Any, str, str]:
    """A real downloaded photo's record, its folder and its walk's query."""
    from inatdl.state import DONE

    try:
        from inatdl.photo import PhotoRecord

        names = [f.name for f in dataclasses.fields(PhotoRecord)]
    except ImportError:  # inatdl before issue 18 (30a1ab4): the state's PhotoRow, a NamedTuple
        from inatdl.state import PhotoRow as PhotoRecord  # type: ignore[attr-defined,no-redef]

        names = list(PhotoRecord._fields)
    row = store.db.execute(
        f"SELECT {', '.join(names)} FROM photos WHERE status=? LIMIT 1", (DONE,)
    ).fetchone()
    template = PhotoRecord(**dict(zip(names, row, strict=True)))
    return template, template.path.rsplit("/", 1)[0], template.query


def _copy(template: Any, photo_id: int, folder: str) -> Any:
    old = str(template.photo_id)
    changes = {
        "photo_id": photo_id,
        "observation_id": photo_id,
        "path": f"{folder}/{photo_id}_square.jpg",
        "url": template.url.replace(old, str(photo_id)),
        "observation_url": template.observation_url.replace(old, str(photo_id)),
    }
    if dataclasses.is_dataclass(template):
        return dataclasses.replace(template, **changes)
    return template._replace(**changes)  # the older code's NamedTuple


def rerun(server: ServerProcess, data: Path, src: Path) -> dict[str, Any]:
    server.control(reset=True)
    result = measure(fetch_command(server, data), src)
    stats = server.stats()
    result["pages"] = sum(stats["pages"].values())
    result["photo_requests"] = stats["counts"].get("photo_get", 0) + stats["counts"].get("photo_head", 0)
    return result


def ready(server: ServerProcess, data: Path, photos: int, src: Path) -> None:
    """Build the finished job in ``data`` with the code in ``src`` unless it is there."""
    if not (data / "state.sqlite").exists():
        say(f"building a finished job of {photos:,} photos in {data}")
        shutil.rmtree(data, ignore_errors=True)
        build(server, data, photos, src)
    server.control(taxa={str(TAXON): photos})


def interleaved(
    server: ServerProcess, root: Path, photos: int, codes: list[tuple[str, Path]], tries: int
) -> list[tuple[int, str, dict[str, Any]]]:
    """Each code reruns a data dir it built itself (an older state version need not be
    readable by the newer code's upgrade, nor the reverse), the codes in turn each try, so
    the load of a shared machine falls on both alike."""
    dirs = {label: root / f"rerun-{photos}-{label.split()[0]}" for label, _ in codes}
    for label, src in codes:
        ready(server, dirs[label], photos, src)
    rows = []
    for attempt in range(tries):
        for label, src in reversed(codes):
            say(f"rerun of {photos:,} photos, {label}, try {attempt + 1}")
            rows.append((photos, f"{label}, try {attempt + 1}", rerun(server, dirs[label], src)))
    return rows


def main() -> int:
    if sys.argv[1:2] == ["--synthesise"]:
        synthesise(Path(sys.argv[2]), int(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--before", type=Path, help="an older checkout's src/, run first")
    parser.add_argument("--tries", type=int, default=2)
    parser.add_argument(
        "--interleave", action="store_true",
        help="with --before: each code reruns a data dir it built itself, the tries alternating",
    )  # fmt: skip
    parser.add_argument("--keep", type=Path, help="build (or reuse) the data dirs here and keep them")
    args = parser.parse_args()
    memory = "/dev/shm" if os.path.isdir("/dev/shm") else None
    root = args.keep or Path(tempfile.mkdtemp(prefix="inatdl-rerun-bench-", dir=memory))
    server = ServerProcess()
    codes = [("this checkout", SRC)] + ([("before", args.before.resolve())] if args.before else [])
    rows = []
    try:
        for photos in args.photos:
            if args.interleave:
                rows += interleaved(server, root, photos, codes, args.tries)
                continue
            data = root / f"rerun-{photos}"
            ready(server, data, photos, codes[-1][1])
            for label, src in reversed(codes):  # "before" first: it writes photos.csv each time
                for attempt in range(args.tries):
                    say(f"rerun of {photos:,} photos, {label}, try {attempt + 1}")
                    rows.append((photos, f"{label}, try {attempt + 1}", rerun(server, data, src)))
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print("| photos | code | wall s | CPU s | peak RSS MB | observation pages | photo requests |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for photos, label, r in rows:
        print(
            f"| {photos:,} | {label} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['maxrss_kb'] / 1024:.0f} "
            f"| {r['pages']} | {r['photo_requests']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
