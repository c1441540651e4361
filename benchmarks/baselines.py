"""The ways people download photos without inatdl, on a list of URLs (one a line).

``python benchmarks/baselines.py notebook URLS OUT [--count K]``: the notebook loop:
``requests.get`` one URL after another, write the file, append the URL to a log,
``time.sleep(0.1)`` (the usual "be polite" pause).

``python benchmarks/baselines.py threadpool URLS OUT --workers N``: one ``requests.Session``
(connection pool as large as the workers) and a ``ThreadPoolExecutor`` of N threads, each
GETting a URL and writing the body; no state, no checks, no budget.

Both print JSON: photos, bytes, and the seconds of the download loop alone.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter


def _name(url: str) -> str:
    parts = urlsplit(url).path.strip("/").split("/")
    return f"{parts[-2]}_{parts[-1]}"


def notebook(urls: list[str], out: Path) -> dict[str, float]:
    out.mkdir(parents=True, exist_ok=True)
    log = out / "downloaded.txt"
    total = 0
    started = time.perf_counter()
    for url in urls:
        response = requests.get(url)
        with open(out / _name(url), "wb") as handle:
            handle.write(response.content)
        total += len(response.content)
        with open(log, "a") as handle:
            handle.write(url + "\n")
        time.sleep(0.1)
    return {"photos": len(urls), "bytes": total, "seconds": time.perf_counter() - started}


def threadpool(urls: list[str], out: Path, workers: int) -> dict[str, float]:
    out.mkdir(parents=True, exist_ok=True)
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=workers)
    session.mount("http://", adapter)
    session.mount("https://", adapter)

    def one(url: str) -> int:
        response = session.get(url, timeout=30)
        response.raise_for_status()
        with open(out / _name(url), "wb") as handle:
            handle.write(response.content)
        return len(response.content)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        total = sum(pool.map(one, urls))
    return {"photos": len(urls), "bytes": total, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("how", choices=("notebook", "threadpool"))
    parser.add_argument("urls", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--count", type=int, help="only the first K URLs")
    args = parser.parse_args()
    urls = [line.strip() for line in args.urls.read_text().splitlines() if line.strip()]
    if args.count:
        urls = urls[: args.count]
    how = args.how
    result = notebook(urls, args.out) if how == "notebook" else threadpool(urls, args.out, args.workers)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
