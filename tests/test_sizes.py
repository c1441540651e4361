"""`photos fetch --size square,medium,original`: several sizes from one walk of the
observations, each photo in each size, one photos.csv row per photo and size."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from fakes import FakeClock
from inat_server import InatServer, RecordedRequest
from world import files, manifest, run, two_taxa

OBSERVATIONS = 250  # a taxon: with the other, 500 observations in one query: 3 pages


def observation_pages(inat: InatServer) -> list[RecordedRequest]:
    return [r for r in inat.api_requests() if r.path == "/v1/observations"]


def photo_gets(inat: InatServer) -> Counter[tuple[str, str]]:
    """(photo id, size) of every photo GET the hosts answered."""
    gets = (r for r in inat.photo_requests() if r.method == "GET")
    found = (re.fullmatch(r"/photos/(\d+)/(\w+)\.\w+", r.path) for r in gets)
    return Counter((m[1], m[2]) for m in found if m is not None)


def test_three_sizes_from_one_walk(inat: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    two_taxa(inat, data, OBSERVATIONS, "square")
    result = run(inat, data, "photos", "fetch", "--size", "square,Medium,ORIGINAL")
    assert result.exit_code == 0, result.output
    pages = observation_pages(inat)
    assert [r.query["id_above"] for r in pages] == ["0", "1199", "5149"]  # the pages of one size
    assert all(r.query["taxon_id"] == "10,20" for r in pages)
    photo_ids = [str(obs * 10) for first in (1000, 5000) for obs in range(first, first + OBSERVATIONS)]
    assert photo_gets(inat) == Counter(
        {(pid, size): 1 for pid in photo_ids for size in ("square", "medium", "original")}
    )
    on_disk = files(data)
    assert len(on_disk) == 3 * 2 * OBSERVATIONS
    for size in ("square", "medium", "original"):
        for pid in photo_ids:
            folder = "Lythrum_salicaria" if int(pid) < 50000 else "Lythrum_alatum"
            assert on_disk[f"photos/{folder}/{pid}_{size}.jpg"] == inat.photo_bytes(int(pid), size)
    rows = manifest(data)
    assert Counter(row["size"] for row in rows) == {"square": 500, "medium": 500, "original": 500}
    assert Counter((row["photo_id"], row["size"]) for row in rows) == Counter(
        {(pid, size): 1 for pid in photo_ids for size in ("square", "medium", "original")}
    )
    assert all(row["path"].endswith(f"_{row['size']}.jpg") for row in rows)
    assert all(f"/{row['size']}.jpg" in row["url"] for row in rows)
    assert "Lythrum salicaria (square)" in result.output
    inat.clear_requests()
    result = run(inat, data, "photos", "fetch", "--size", "square,medium,original")
    assert result.exit_code == 0, result.output
    assert len(observation_pages(inat)) == 1 and not photo_gets(inat)


def test_repeated_size_options_combine(inat: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    two_taxa(inat, data, 3, "small")
    result = run(inat, data, "photos", "fetch", "--size", "medium", "--size", "Small")
    assert result.exit_code == 0, result.output
    assert len(observation_pages(inat)) == 1
    assert Counter(row["size"] for row in manifest(data)) == {"medium": 6, "small": 6}


def test_a_size_added_later_is_walked_once_and_the_other_not_fetched_again(
    inat: InatServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    two_taxa(inat, data, OBSERVATIONS, "medium")
    assert run(inat, data, "photos", "fetch", "--size", "medium").exit_code == 0
    inat.clear_requests()
    result = run(inat, data, "photos", "fetch", "--size", "medium,square")
    assert result.exit_code == 0, result.output
    assert [r.query["id_above"] for r in observation_pages(inat)] == ["0", "1199", "5149"]
    assert {size for _, size in photo_gets(inat)} == {"square"}
    assert sum(photo_gets(inat).values()) == 2 * OBSERVATIONS
    assert Counter(row["size"] for row in manifest(data)) == {"medium": 500, "square": 500}
    inat.clear_requests()
    assert run(inat, data, "photos", "fetch", "--size", "square,medium").exit_code == 0
    assert len(observation_pages(inat)) == 1  # both sizes' walks stand together again


def test_the_cap_counts_each_size_on_its_own(inat: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    two_taxa(inat, data, 20, "square")
    result = run(inat, data, "photos", "fetch", "--size", "square,small", "--max-per-taxon", "3")
    assert result.exit_code == 0, result.output
    rows = manifest(data)
    assert Counter((row["taxon_name"], row["size"]) for row in rows) == {
        ("Lythrum salicaria", "square"): 3,
        ("Lythrum salicaria", "small"): 3,
        ("Lythrum alatum", "square"): 3,
        ("Lythrum alatum", "small"): 3,
    }
    assert len(observation_pages(inat)) == 1


def test_dry_run_counts_photos_and_bytes_per_size(inat: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    two_taxa(inat, data, 10, "square")
    inat.photo_size_bytes = {"square": 1_000, "original": 1_000_000}
    result = run(inat, data, "photos", "fetch", "--size", "square,original", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    assert "Lythrum salicaria (square) 10 0 10.0 kB" in lines  # to download, skipped, bytes
    assert "Lythrum alatum (original) 10 0 10.0 MB" in lines
    assert "total square 20 0 20.0 kB" in lines
    assert "total original 20 0 20.0 MB" in lines
    assert "total 40 0 20.0 MB" in lines
    assert len(observation_pages(inat)) == 1
    assert not photo_gets(inat)  # HEAD requests only
    heads = [r for r in inat.photo_requests() if r.method == "HEAD"]
    assert Counter(r.path.rsplit("/", 1)[1].split(".")[0] for r in heads) == {"square": 10, "original": 10}


def test_the_budget_judges_each_size_by_its_own_estimate(inat: InatServer, tmp_path: Path) -> None:
    """Issue 21: three sizes in one walk under one byte budget, each photo reserved at its own
    size's estimate (from the sizes the state holds). A limit that holds the page's squares and
    mediums but not one original more: those come, no original is asked for (no byte past the
    limit, no overrun said), and the run stops at the limit with exit 75."""
    data = tmp_path / "data"
    two_taxa(inat, data, 10, "square")
    inat.photo_size_bytes = {"square": 1_000, "medium": 10_000, "original": 100_000}
    clock = FakeClock()
    sizes = ("photos", "fetch", "--size", "square,medium,original", "--workers", "1")
    assert run(inat, data, *sizes, "--max-per-taxon", "2", clock=clock).exit_code == 0  # 4 of each
    clock.advance(24 * 3600)  # that run's bytes out of every window
    inat.clear_requests()
    limit = 16 * 1_000 + 16 * 10_000 + 50_000  # the 16 squares and mediums left, half an original
    result = run(inat, data, *sizes, "--hourly-limit", f"{limit}B", "--no-wait", clock=clock)
    assert result.exit_code == 75, result.output
    assert result.stderr.splitlines()[-1].startswith(
        "Error: the hourly download limit of 226.0 kB is reached; the budget frees up at"
    )
    assert photo_gets(inat) == Counter(
        {(str(obs * 10), size): 1 for first in (1000, 5000) for obs in range(first + 2, first + 10)
         for size in ("square", "medium")}
    )  # fmt: skip
    assert [r.path for r in inat.photo_requests() if r.method == "HEAD"] == []  # none near the limit
    assert inat.bytes_sent() == 16 * 1_000 + 16 * 10_000 <= limit
    assert "Over a limit" not in result.stderr
    assert set(inat.sent_in_full().values()) == {1}  # no photo sent whole twice
    assert Counter(row["size"] for row in manifest(data)) == {"square": 20, "medium": 20, "original": 4}


@pytest.mark.parametrize("size", ["huge", "medium,", "square,giant"])
def test_an_unknown_size_is_a_usage_error(inat: InatServer, tmp_path: Path, size: str) -> None:
    data = tmp_path / "data"
    two_taxa(inat, data, 1, "square")
    result = run(inat, data, "photos", "fetch", "--size", size)
    if size == "medium,":  # an empty word is left out, as in --license
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2
    assert "choose from square, thumb, small, medium, large, original" in result.output
