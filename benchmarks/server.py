"""A loopback stand-in for the iNaturalist API and its photo hosts, for the benchmarks.

It runs in its own process (``python benchmarks/server.py serve``) so that it never shares
the measured client's CPU time or GIL. Every request waits ``latency_ms`` in
``asyncio.sleep`` first, which costs the server no CPU.

Served:

- ``GET /v1/observations?taxon_id=T[,T2...]&per_page=N&id_above=I`` (``order_by=id&order=asc``):
  the observations of taxon T with ids above I, at most 200 a page, and ``total_results``
  counting those still above I (as the real API does). Taxon T has the observation ids
  ``T * 10,000,000 + 1 .. + n``; each has one photo whose id is the observation id. An
  observation weighs about ``obs_bytes`` of JSON (a filler ``description``), so 200 of them
  at the default 5,000 bytes make a page of about 1 MB, like the real API's.
- ``GET|HEAD /photos/<id>/<size>.jpg``: ``photo_bytes`` deterministic bytes starting with
  ``\\xff\\xd8\\xff\\xe0`` and ending with ``\\xff\\xd9``, with Content-Length.
- ``POST /_control`` (JSON: ``latency_ms``, ``photo_bytes``, ``obs_bytes``, ``taxa`` as
  ``{taxon_id: observation count}``, ``reset``) and ``GET /_stats`` (request counts, pages
  per taxon, the server's own CPU seconds, and ``photo_seconds``: from the first photo GET's
  arrival to the last one's answer, the download phase as the hosts see it); neither waits
  the latency.

``python benchmarks/server.py load --base URL --concurrency N --count M`` is a load generator
(aiohttp client, its own process) that measures how many photos a second the server can
serve at its current latency and that concurrency.

:class:`ServerProcess` starts and drives the server from another program (stdlib only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

OBS_STRIDE = 10_000_000
MAX_PER_PAGE = 200
DEFAULT_PER_PAGE = 30
JPEG_HEAD = b"\xff\xd8\xff\xe0"
JPEG_TAIL = b"\xff\xd9"
LICENSES = ("cc-by", "cc-by-nc", "cc0", "cc-by-sa", "cc-by-nc-sa")


def photo_body(photo_bytes: int) -> bytes:
    """Deterministic photo bytes of the given length: a JPEG signature, a pattern, an end marker."""
    photo_bytes = max(photo_bytes, 32)
    pattern = bytes(range(256)) * (photo_bytes // 256 + 1)
    return JPEG_HEAD + pattern[: photo_bytes - len(JPEG_HEAD) - len(JPEG_TAIL)] + JPEG_TAIL


def photo_ids(taxon_id: int, count: int) -> range:
    """The photo (and observation) ids of a taxon of ``count`` observations."""
    first = taxon_id * OBS_STRIDE + 1
    return range(first, first + count)


def photo_url(base: str, photo_id: int, size: str = "square") -> str:
    """A photo's URL as the API gives it (``square``) or as inatdl asks for it."""
    return f"{base}/photos/{photo_id}/{size}.jpg?{1_600_000_000 + photo_id % 100_000}"


class World:
    """The server's mutable settings and counters."""

    def __init__(self) -> None:
        self.latency = 0.0
        self.taxa: dict[int, int] = {}
        self.set_photo_bytes(20_000)
        self.set_obs_bytes(5_000)
        self.reset()

    def reset(self) -> None:
        self.pages: Counter[str] = Counter()  # by the taxon_id asked: "T" or "T1,T2,..."
        self.counts: Counter[str] = Counter()
        self.bytes_sent = 0
        self.first_photo_at: float | None = None  # when the first photo GET arrived
        self.last_photo_at: float | None = None  # when the last photo GET was answered

    def set_photo_bytes(self, n: int) -> None:
        self.photo_bytes = int(n)
        self.body = photo_body(self.photo_bytes)

    def set_obs_bytes(self, n: int) -> None:
        self.obs_bytes = int(n)
        base = len(json.dumps(self.observation("http://127.0.0.1:65535", 1, 1_000_000_001, "")))
        need = max(0, self.obs_bytes - base)
        sentence = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. "
        self.filler = (sentence * (need // len(sentence) + 1))[:need]

    def observation(self, base: str, taxon_id: int, obs_id: int, filler: str) -> dict[str, Any]:
        """An observation with the fields and weight of the real API's, one photo."""
        license_code = LICENSES[obs_id % len(LICENSES)]
        login = f"observer{obs_id % 997}"
        label = "CC0" if license_code == "cc0" else license_code.upper().replace("CC-", "CC ", 1)
        attribution = (
            f"(c) {login}, no rights reserved (CC0)"
            if license_code == "cc0"
            else f"(c) {login}, some rights reserved ({label})"
        )
        lat, lng = 40 + (obs_id % 1000) / 1000, -75 + (obs_id % 777) / 777
        taxon = {
            "id": taxon_id,
            "name": f"Benchmarkia species{taxon_id}",
            "rank": "species",
            "rank_level": 10,
            "is_active": True,
            "iconic_taxon_name": "Plantae",
            "preferred_common_name": f"Benchmark plant {taxon_id}",
            "ancestor_ids": [48460, 47126, 211194, 47125, 47124, 47366, 53904, 61297, taxon_id],
            "observations_count": self.taxa.get(taxon_id, 0),
            "default_photo": {"id": 1, "license_code": "cc-by", "url": photo_url(base, 1)},
        }
        photo = {
            "id": obs_id,
            "license_code": license_code,
            "url": photo_url(base, obs_id),
            "attribution": attribution,
            "original_dimensions": {"width": 2048, "height": 1536},
            "flags": [],
        }
        return {
            "id": obs_id,
            "uuid": f"00000000-0000-4000-8000-{obs_id:012d}",
            "uri": f"https://www.inaturalist.org/observations/{obs_id}",
            "quality_grade": "research",
            "observed_on": "2021-07-14",
            "observed_on_details": {"date": "2021-07-14", "year": 2021, "month": 7, "day": 14},
            "time_observed_at": "2021-07-14T10:31:00-04:00",
            "created_at": "2021-07-14T18:02:11-04:00",
            "updated_at": "2021-07-15T08:44:52-04:00",
            "species_guess": taxon["preferred_common_name"],
            "description": filler or None,
            "location": f"{lat},{lng}",
            "geojson": {"type": "Point", "coordinates": [lng, lat]},
            "geoprivacy": None,
            "obscured": False,
            "place_ids": [1, 14, 97394, 9853, 59613, 64422],
            "license_code": license_code,
            "captive": False,
            "taxon": taxon,
            "identifications_count": 2,
            "comments_count": 0,
            "faves_count": 0,
            "user": {"id": obs_id % 997, "login": login, "name": None, "icon_url": None},
            "photos": [photo],
            "observation_photos": [{"id": obs_id + 1, "position": 0, "photo_id": obs_id, "photo": photo}],
            "sounds": [],
            "tags": [],
        }

    def page(self, base: str, query: Any) -> bytes:
        asked = str(query.get("taxon_id") or "0")
        per_page = max(0, min(MAX_PER_PAGE, int(query.get("per_page") or DEFAULT_PER_PAGE)))
        id_above = int(query.get("id_above") or 0)
        total, chosen = 0, []
        for taxon_id in sorted({int(t) for t in asked.split(",") if t.strip()}):  # ids ascend with taxa
            count = self.taxa.get(taxon_id, 0)
            ids = photo_ids(taxon_id, count)
            start = min(count, max(0, id_above - ids.start + 1)) if count else 0
            total += count - start
            chosen += [(taxon_id, i) for i in ids[start : start + per_page - len(chosen)]]
        results = [self.observation(base, taxon_id, i, self.filler) for taxon_id, i in chosen]
        self.pages[asked] += 1
        payload = {"total_results": total, "page": 1, "per_page": per_page, "results": results}
        return json.dumps(payload).encode()


def make_app(world: World) -> Any:
    from aiohttp import web

    async def wait() -> None:
        if world.latency > 0:
            await asyncio.sleep(world.latency)

    def base_of(request: web.Request) -> str:
        return f"http://{request.host}"

    async def observations(request: web.Request) -> web.Response:
        world.counts["api"] += 1
        await wait()
        body = world.page(base_of(request), request.query)
        world.bytes_sent += len(body)
        return web.Response(body=body, content_type="application/json")

    async def taxa(request: web.Request) -> web.Response:
        world.counts["api"] += 1
        await wait()
        return web.json_response({"total_results": 0, "page": 1, "per_page": 30, "results": []})

    async def photo(request: web.Request) -> web.Response:
        head = request.method == "HEAD"
        world.counts["photo_head" if head else "photo_get"] += 1
        if not head and world.first_photo_at is None:
            world.first_photo_at = time.monotonic()
        await wait()
        try:
            photo_id = int(request.match_info["photo_id"])
        except ValueError:
            raise web.HTTPNotFound() from None
        body = world.body
        tag = f"{photo_id:020d}".encode()
        body = body[:4] + tag + body[4 + len(tag) :]
        if not head:
            world.bytes_sent += len(body)
            world.last_photo_at = time.monotonic()
        return web.Response(body=body, content_type="image/jpeg")

    async def control(request: web.Request) -> web.Response:
        data = await request.json()
        if "latency_ms" in data:
            world.latency = float(data["latency_ms"]) / 1000
        if "photo_bytes" in data:
            world.set_photo_bytes(data["photo_bytes"])
        if "taxa" in data:
            world.taxa = {int(k): int(v) for k, v in data["taxa"].items()}
        if "obs_bytes" in data:
            world.set_obs_bytes(data["obs_bytes"])
        if data.get("reset"):
            world.reset()
        return web.json_response({"ok": True})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "pages": {str(k): v for k, v in world.pages.items()},
                "counts": dict(world.counts),
                "bytes_sent": world.bytes_sent,
                "cpu_seconds": time.process_time(),
                "latency_ms": world.latency * 1000,
                "photo_bytes": world.photo_bytes,
                "obs_bytes": world.obs_bytes,
                # the photo GETs, from the first's arrival to the last's answer
                "photo_seconds": (world.last_photo_at or 0.0) - (world.first_photo_at or 0.0),
            }
        )

    app = web.Application()
    app.router.add_get("/v1/observations", observations)
    app.router.add_get("/v1/taxa", taxa)
    app.router.add_get("/photos/{photo_id}/{name}", photo)  # HEAD too (allow_head)
    app.router.add_post("/_control", control)
    app.router.add_get("/_stats", stats)
    return app


async def _serve(latency_ms: float) -> None:
    from aiohttp import web

    world = World()
    world.latency = latency_ms / 1000
    runner = web.AppRunner(make_app(world), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


async def _load(base: str, concurrency: int, count: int, first_id: int) -> dict[str, Any]:
    """Fetch ``count`` photos with ``concurrency`` connections; how fast the server serves."""
    import aiohttp

    next_index = 0
    received = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index, received
        while next_index < count:
            i = next_index
            next_index += 1
            async with session.get(photo_url(base, first_id + i, "medium")) as response:
                received += len(await response.read())

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def warm_up() -> None:
            async with session.get(photo_url(base, first_id, "medium")) as response:
                await response.read()

        await asyncio.gather(*(warm_up() for _ in range(concurrency)))  # open the connections
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {
        "photos": count,
        "seconds": seconds,
        "photos_per_s": count / seconds,
        "mb_per_s": received / seconds / 1e6,
        "concurrency": concurrency,
    }


class ServerProcess:
    """The server in a child process, and its control endpoints (used by run.py)."""

    def __init__(self, python: str = sys.executable) -> None:
        self.proc = subprocess.Popen(
            [python, str(Path(__file__).resolve()), "serve"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            self.proc.kill()
            raise RuntimeError(f"the benchmark server did not start: {line!r}")
        self.port = int(line[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.base}/v1"
        self.python = python

    def control(self, **settings: Any) -> None:
        data = json.dumps(settings).encode()
        request = urllib.request.Request(
            f"{self.base}/_control", data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base}/_stats", timeout=10) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result

    def ceiling(self, concurrency: int, count: int, first_id: int) -> dict[str, Any]:
        """Photos a second the server serves at its latency and this concurrency, measured
        by an aiohttp client in another process."""
        out = subprocess.run(
            [
                self.python,
                str(Path(__file__).resolve()),
                "load",
                "--base",
                self.base,
                "--concurrency",
                str(concurrency),
                "--count",
                str(count),
                "--first-id",
                str(first_id),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        result: dict[str, Any] = json.loads(out.stdout)
        return result

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve on 127.0.0.1, a free port (printed as 'PORT n')")
    serve.add_argument("--latency-ms", type=float, default=0.0)
    load = sub.add_parser("load", help="measure the server's photo ceiling")
    load.add_argument("--base", required=True, help="e.g. http://127.0.0.1:8000")
    load.add_argument("--concurrency", type=int, default=16)
    load.add_argument("--count", type=int, default=2000)
    load.add_argument("--first-id", type=int, default=OBS_STRIDE + 1)
    args = parser.parse_args(argv)
    if args.command == "serve":
        asyncio.run(_serve(args.latency_ms))
    else:
        result = asyncio.run(_load(args.base, args.concurrency, args.count, args.first_id))
        print(json.dumps(result))


if __name__ == "__main__":
    main()
