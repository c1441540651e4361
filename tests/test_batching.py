"""Many taxa in one query: the API requests a job costs, and where each photo goes."""

from __future__ import annotations

import json
import math
import random
import re
import signal
import time
from pathlib import Path

from click.testing import CliRunner
from fakes import FakeClock
from inat_server import Fault, InatServer
from world import files, manifest, run, start, write_taxa

from inatdl.cli import cli
from inatdl.client import ApiClient, build_session, longest_backoff
from inatdl.constants import ALL_LICENSES, RETRY_NOTICE_SECONDS
from inatdl.fetch import FetchOptions, fetch_photos
from inatdl.observations import Filters
from inatdl.output.progress import TqdmReporter
from inatdl.reporter import SilentReporter
from inatdl.taxa import load_resolved_taxa

# Eight Lythrum taxa as in the issue: 902 observations, one photo each, a species and its
# variety among them (hyssopifolia and its var. thymifolium), their ids interleaved.
HYSSOPIFOLIA, THYMIFOLIUM, VIRGATUM = 13, 18, 17
EIGHT = {
    11: ("Lythrum salicaria", 300),
    12: ("Lythrum alatum", 200),
    HYSSOPIFOLIA: ("Lythrum hyssopifolia", 150),
    14: ("Lythrum tribracteatum", 100),
    15: ("Lythrum junceum", 60),
    16: ("Lythrum portula", 40),
    VIRGATUM: ("Lythrum virgatum", 30),
    THYMIFOLIUM: ("Lythrum hyssopifolia thymifolium", 22),
}
TOTAL = sum(count for _, count in EIGHT.values())
FETCH = ("photos", "fetch", "--size", "square")


def build_eight(inat: InatServer) -> dict[int, int]:
    """The eight taxa and their observations (ids 1000-1901); {observation id: taxon id}."""
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(2, "Lythrum", rank="genus", parent_id=1)
    for taxon_id, (name, _) in EIGHT.items():
        if taxon_id != THYMIFOLIUM:
            inat.add_taxon(taxon_id, name, parent_id=2)
    inat.add_taxon(THYMIFOLIUM, EIGHT[THYMIFOLIUM][0], rank="variety", parent_id=HYSSOPIFOLIA)
    labels = [taxon_id for taxon_id, (_, count) in EIGHT.items() for _ in range(count)]
    random.Random(9).shuffle(labels)
    owner = {1000 + i: taxon_id for i, taxon_id in enumerate(labels)}
    inat.photo_size_bytes = {"square": 200}
    for obs_id, taxon_id in owner.items():
        inat.add_observations(taxon_id, 1, first_id=obs_id)
    return owner


def listed(data: Path, taxa: list[int]) -> None:
    write_taxa(data, [(taxon_id, EIGHT[taxon_id][0]) for taxon_id in taxa])


def folder(taxon_id: int) -> str:
    return "photos/" + EIGHT[taxon_id][0].replace(" ", "_")


def pages(inat: InatServer) -> list[tuple[str, str]]:
    """(taxon_id, id_above) of every observation page served."""
    return [
        (r.query["taxon_id"], r.query["id_above"])
        for r in inat.requests_to("/v1/observations")
        if r.status == 200
    ]


def test_eight_taxa_take_the_fewest_pages_and_a_listed_variety_its_own_folder(
    inat: InatServer, tmp_path: Path
) -> None:
    owner = build_eight(inat)
    data = tmp_path / "data"
    listed(data, sorted(EIGHT))
    result = run(inat, data, *FETCH)
    assert result.exit_code == 0, result.output
    everyone = ",".join(str(t) for t in sorted(EIGHT))
    assert pages(inat) == [(everyone, str(after)) for after in (0, 1199, 1399, 1599, 1799)]
    assert len(pages(inat)) == math.ceil(TOTAL / 200)
    # each photo in the folder of its own taxon, the variety's too
    assert set(files(data)) == {f"{folder(t)}/{obs * 10}_square.jpg" for obs, t in owner.items()}
    rows = manifest(data)
    assert len(rows) == TOTAL
    assert all(r["taxon_id"] == r["observed_taxon_id"] == str(owner[int(r["observation_id"])]) for r in rows)
    # a rerun of the finished job: one page
    inat.clear_requests()
    assert run(inat, data, *FETCH).exit_code == 0
    assert pages(inat) == [(everyone, "1901")]
    assert not inat.photo_requests()


def test_without_the_variety_listed_its_photos_go_to_the_species(inat: InatServer, tmp_path: Path) -> None:
    owner = build_eight(inat)
    data = tmp_path / "data"
    listed(data, [t for t in sorted(EIGHT) if t != THYMIFOLIUM])
    assert run(inat, data, *FETCH).exit_code == 0
    assert len(pages(inat)) == math.ceil(TOTAL / 200)
    variety = [r for r in manifest(data) if owner[int(r["observation_id"])] == THYMIFOLIUM]
    assert len(variety) == EIGHT[THYMIFOLIUM][1]
    for row in variety:
        assert (row["taxon_id"], row["taxon_name"]) == (str(HYSSOPIFOLIA), "Lythrum hyssopifolia")
        assert (row["observed_taxon_id"], row["observed_taxon_name"]) == (
            str(THYMIFOLIUM),
            EIGHT[THYMIFOLIUM][0],
        )
        assert row["path"].startswith(folder(HYSSOPIFOLIA) + "/")


def test_a_variety_listed_after_its_species_was_fetched_gets_its_photos_without_a_download(
    inat: InatServer, tmp_path: Path
) -> None:
    """The species fetched first (its variety's photos in its folder), then the variety added
    to the list: the variety's photos move to its folder, in photos.csv too (so an export
    labels them with the variety), and none is downloaded again."""
    owner = build_eight(inat)
    data = tmp_path / "data"
    listed(data, [HYSSOPIFOLIA])
    assert run(inat, data, *FETCH).exit_code == 0
    inat.clear_requests()
    listed(data, [HYSSOPIFOLIA, THYMIFOLIUM])

    result = run(inat, data, *FETCH)

    assert result.exit_code == 0, result.output
    assert not inat.photo_requests()
    variety = EIGHT[THYMIFOLIUM][1]
    rows = manifest(data)
    assert len(rows) == EIGHT[HYSSOPIFOLIA][1] + variety
    assert all(r["taxon_id"] == str(owner[int(r["observation_id"])]) for r in rows)
    assert set(files(data)) == {r["path"] for r in rows}
    assert sum(r["path"].startswith(folder(THYMIFOLIUM) + "/") for r in rows) == variety
    assert f"Moved {variety} photos already downloaded to the folder of a more specific" in result.output
    inat.clear_requests()
    assert "Moved" not in run(inat, data, *FETCH).output  # once moved, they stay


def test_a_subgenus_named_as_its_genus_keeps_the_photos_it_takes_over(
    inat: InatServer, tmp_path: Path
) -> None:
    """The genus Quercus fetched, then the subgenus Quercus added: the two share a folder
    name, so its photos already stand where they go. They are not deleted, and not
    downloaded again."""
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(47851, "Quercus", rank="genus", parent_id=1)
    inat.add_taxon(861036, "Quercus", rank="subgenus", parent_id=47851)
    inat.add_observations(861036, 3, first_id=100)
    data = tmp_path / "data"
    write_taxa(data, [(47851, "Quercus")])
    assert run(inat, data, "photos", "fetch", "--size", "square").exit_code == 0
    before = files(data)
    inat.clear_requests()
    write_taxa(data, [(47851, "Quercus"), (861036, "Quercus")])

    result = run(inat, data, "photos", "fetch", "--size", "square")

    assert result.exit_code == 0, result.output
    assert files(data) == before and len(before) == 3
    rows = manifest(data)
    assert {r["path"] for r in rows} == set(before)
    assert {r["taxon_id"] for r in rows} == {"861036"}
    assert not inat.photo_requests()
    inat.clear_requests()
    assert run(inat, data, "photos", "fetch", "--size", "square").exit_code == 0
    assert not inat.photo_requests() and files(data) == before


def test_a_cap_counts_a_listed_variety_apart_and_drops_capped_taxa_from_the_query(
    inat: InatServer, tmp_path: Path
) -> None:
    owner = build_eight(inat)
    data = tmp_path / "data"
    listed(data, sorted(EIGHT))
    assert run(inat, data, *FETCH, "--max-per-taxon", "20").exit_code == 0
    by_taxon: dict[int, list[int]] = {}
    for row in manifest(data):
        by_taxon.setdefault(int(row["taxon_id"]), []).append(int(row["observation_id"]))
    for taxon_id in EIGHT:
        own = sorted(obs for obs, t in owner.items() if t == taxon_id)
        assert sorted(by_taxon[taxon_id]) == own[:20], taxon_id  # its own lowest ids, not the variety's
    # a taxon leaves the query once it has its 20, and not before; the walk goes on by id
    served = pages(inat)
    assert served[0] == (",".join(str(t) for t in sorted(EIGHT)), "0")
    assert [int(after) for _, after in served] == sorted(int(after) for _, after in served)
    for asked, after in served:
        for taxon_id in EIGHT:
            had = len([obs for obs, t in owner.items() if t == taxon_id and obs <= int(after)])
            assert (str(taxon_id) in asked.split(",")) == (had < 20), (asked, after, taxon_id)
    assert len(served) < math.ceil(TOTAL / 200)
    # the same cap again: nothing to ask; a higher one goes on from where each taxon stopped
    inat.clear_requests()
    assert run(inat, data, *FETCH, "--max-per-taxon", "20").exit_code == 0
    assert not inat.requests_to("/v1/observations") and not inat.photo_requests()
    assert run(inat, data, *FETCH, "--max-per-taxon", "25").exit_code == 0
    assert all(after != "0" for _, after in pages(inat))  # each from where its walk stopped
    for taxon_id in EIGHT:
        own = sorted(obs for obs, t in owner.items() if t == taxon_id)
        got = sorted(int(r["observation_id"]) for r in manifest(data) if r["taxon_id"] == str(taxon_id))
        assert got == own[:25], taxon_id
    assert len(inat.photo_requests()) == sum(min(count, 25) - 20 for _, count in EIGHT.values())


def test_a_cap_without_the_variety_listed_counts_its_photos_for_the_species(
    inat: InatServer, tmp_path: Path
) -> None:
    owner = build_eight(inat)
    data = tmp_path / "data"
    listed(data, [HYSSOPIFOLIA, VIRGATUM])
    assert run(inat, data, *FETCH, "--max-per-taxon", "20").exit_code == 0
    species = sorted(int(r["observation_id"]) for r in manifest(data) if r["taxon_id"] == str(HYSSOPIFOLIA))
    assert species == sorted(obs for obs, t in owner.items() if t in (HYSSOPIFOLIA, THYMIFOLIUM))[:20]


def test_a_taxon_added_between_runs_walks_alone_and_then_joins_the_others(
    inat: InatServer, tmp_path: Path
) -> None:
    owner = build_eight(inat)
    data = tmp_path / "data"
    seven = [t for t in sorted(EIGHT) if t != 11]
    listed(data, seven)
    assert run(inat, data, *FETCH).exit_code == 0
    inat.clear_requests()
    listed(data, sorted(EIGHT))  # salicaria added to taxa.csv
    assert run(inat, data, *FETCH).exit_code == 0
    served = pages(inat)
    # its own walk from the start (2 pages for 300 observations); the others asked once, not again
    salicaria = sorted(obs for obs, t in owner.items() if t == 11)
    assert served == [("11", "0"), ("11", str(salicaria[199])), (",".join(map(str, seven)), "1901")]
    got = {int(r["observation_id"]) for r in manifest(data) if r["taxon_id"] == "11"}
    assert got == {obs for obs, t in owner.items() if t == 11}
    assert len(manifest(data)) == TOTAL
    # and the next run asks for all eight in one page again
    inat.clear_requests()
    assert run(inat, data, *FETCH).exit_code == 0
    assert pages(inat) == [(",".join(str(t) for t in sorted(EIGHT)), "1901")]


def test_a_listing_stopped_by_the_api_resumes_in_the_same_query(inat: InatServer, tmp_path: Path) -> None:
    build_eight(inat)
    data = tmp_path / "data"
    listed(data, sorted(EIGHT))
    inat.throttle(after=2, every=1, retry_after="1", target="observations")  # page 3 never comes
    assert run(inat, data, *FETCH).exit_code == 1
    assert len(manifest(data)) == 400
    inat.clear_faults()
    assert run(inat, data, *FETCH).exit_code == 0
    assert len(pages(inat)) == math.ceil(TOTAL / 200)  # both runs together: no page twice
    assert len(manifest(data)) == TOTAL


def test_a_listing_killed_mid_walk_resumes_within_one_extra_page(inat: InatServer, tmp_path: Path) -> None:
    owner = build_eight(inat)
    data = tmp_path / "data"
    listed(data, sorted(EIGHT))
    inat.add_fault(Fault("latency", target="observations", delay=0.3))
    child = start(inat, data)
    deadline = time.monotonic() + 20
    while len(inat.requests_to("/v1/observations")) < 2:
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)  # while the third page is on its way
    child.wait()
    inat.clear_faults()
    child = start(inat, data)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert len(pages(inat)) <= math.ceil(TOTAL / 200) + 1
    assert {int(r["observation_id"]) for r in manifest(data)} == set(owner)


def test_dry_run_tells_the_requests_of_the_listing_and_their_time(inat: InatServer, tmp_path: Path) -> None:
    build_eight(inat)
    data = tmp_path / "data"
    listed(data, sorted(EIGHT))
    result = run(inat, data, "--api-rate", "0.5", *FETCH, "--dry-run")
    assert result.exit_code == 0, result.output
    assert (
        "API requests for the listing: 5 (5 observation pages), 10 s at 0.5 a second; "
        "the listing is kept, so the real run asks only for what is new. "
        "Sizes estimated from 40 HEAD requests to the photo hosts."
    ) in result.stdout
    assert len([r for r in inat.photo_requests() if r.method == "HEAD"]) == 40
    result = run(inat, data, *FETCH, "--dry-run")
    assert "API requests for the listing: 1 (1 observation page), 1 s at 1 a second;" in result.stdout


def test_an_api_that_does_not_answer_is_told_in_one_line_while_retrying(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_taxa(data, [(11, "Lythrum salicaria")])
    clock = FakeClock()
    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(data), "--api-url", "http://127.0.0.1:9/v1", *FETCH],
        obj={"clock": clock, "timeout": (1.0, 1.0)},
    )
    assert result.exit_code == 1
    notices = [line for line in result.stderr.splitlines() if "not answering" in line]
    assert len(notices) == 1
    promise = re.fullmatch(
        r"iNaturalist API not answering \(connection refused\); retrying up to (\d+) more times, "
        r"waiting at most (\d+) s in all…",
        notices[0],
    )
    assert promise, notices[0]
    assert result.stderr.index(notices[0]) < result.stderr.index("Error: could not get")
    # the promise holds: no more waiting than it said, after the few seconds before it
    assert sum(clock.sleeps) <= int(promise[2]) + RETRY_NOTICE_SECONDS + 1
    assert int(promise[2]) == longest_backoff(7 - int(promise[1]), 7)


def test_a_short_retry_is_not_told(inat: InatServer, tmp_path: Path) -> None:
    build_eight(inat)
    data = tmp_path / "data"
    listed(data, [11])
    inat.add_fault(Fault("status", target="observations", status=503, times=1))
    result = run(inat, data, *FETCH)
    assert result.exit_code == 0, result.output
    assert "not answering" not in result.stderr


class RecordingReporter(SilentReporter):
    def __init__(self) -> None:
        self.pages: list[tuple[int, int]] = []

    def paged(self, done: int, left: int) -> None:
        self.pages.append((done, left))


def test_progress_counts_the_pages_of_the_whole_job(inat: InatServer, tmp_path: Path) -> None:
    build_eight(inat)
    data = tmp_path / "data"
    listed(data, sorted(EIGHT))
    clock = FakeClock()
    client = ApiClient(inat.api_url, build_session(), clock, rate=1)
    options = FetchOptions(("square",), Filters(ALL_LICENSES), 1, 10**12, 10**12, dry_run=True)
    reporter = RecordingReporter()
    fetch_photos(client, data, load_resolved_taxa(data), options, clock, reporter)
    assert reporter.pages == [(0, 1), (1, 4), (2, 3), (3, 2), (4, 1), (5, 0)]
    bar = TqdmReporter()
    bar.listing("Lythrum salicaria and 7 other taxa")
    bar.paged(2, 3)
    assert bar.photos.desc == "photos (paging Lythrum salicaria and 7 other taxa: 2/5 pages)"
    bar.close()


def test_a_place_job_asks_its_taxa_together_within_the_place(inat: InatServer, tmp_path: Path) -> None:
    inat.add_taxon(1, "Plantae", rank="kingdom")
    for taxon_id in (21, 22, 23):
        inat.add_taxon(taxon_id, f"Loca species{taxon_id}", parent_id=1)
    inside: set[int] = set()
    for i in range(450):  # ids interleaved across the taxa, one in three outside the place
        taxon_id, place = 21 + i % 3, (77,) if i % 3 else (5,)
        inat.add_observations(taxon_id, 1, first_id=1000 + i, place_ids=place)
        if i % 3:
            inside.add(1000 + i)
    data = tmp_path / "data"
    write_taxa(data, [(t, f"Loca species{t}") for t in (21, 22, 23)])
    assert run(inat, data, *FETCH, "--place-id", "77").exit_code == 0
    served = inat.requests_to("/v1/observations")
    assert {(r.query["taxon_id"], r.query["place_id"]) for r in served} == {("21,22,23", "77")}
    assert len(served) == math.ceil(len(inside) / 200)
    assert {int(r["observation_id"]) for r in manifest(data)} == inside


def test_an_observation_whose_lineage_names_no_listed_taxon_goes_where_the_api_found_it(
    inat: InatServer, tmp_path: Path
) -> None:
    """The variety was moved upstream (now shown under the genus) before its observations
    were re-indexed: a query for the listed species still finds them, and they must not be
    lost because their lineage names none of the listed taxa."""
    owner = build_eight(inat)
    inat.move_taxon_unindexed(THYMIFOLIUM, [1, 2, THYMIFOLIUM])
    data = tmp_path / "data"
    seven = [t for t in sorted(EIGHT) if t != THYMIFOLIUM]
    listed(data, seven)
    assert run(inat, data, *FETCH).exit_code == 0
    variety = {obs for obs, t in owner.items() if t == THYMIFOLIUM}
    rows = manifest(data)
    assert {int(r["observation_id"]) for r in rows} == set(owner)
    assert {r["taxon_id"] for r in rows if int(r["observation_id"]) in variety} == {str(HYSSOPIFOLIA)}
    # found by halving the query's taxa: a few requests for a page holding such observations
    asked = inat.requests_to("/v1/observations")
    walked = [r for r in asked if "id_above" in r.query]
    assert len(walked) == math.ceil(TOTAL / 200)
    placing = [r for r in asked if "id_above" not in r.query]
    assert 0 < len(placing) <= len(walked) * math.ceil(math.log2(len(seven)))
    assert all(set(r.query["id"].split(",")) <= {str(obs) for obs in variety} for r in placing)


def test_raising_a_cap_walks_the_capped_taxa_together_not_one_query_each(
    inat: InatServer, tmp_path: Path
) -> None:
    inat.add_taxon(1, "Plantae", rank="kingdom")
    names = {100 + i: f"Rara species{i}" for i in range(40)}
    for taxon_id, name in names.items():
        inat.add_taxon(taxon_id, name, parent_id=1)
    labels = [taxon_id for taxon_id in names for _ in range(12)]
    random.Random(4).shuffle(labels)
    inat.photo_size_bytes = {"square": 100}
    for i, taxon_id in enumerate(labels):
        inat.add_observations(taxon_id, 1, first_id=5000 + i)
    data = tmp_path / "data"
    write_taxa(data, list(names.items()))
    assert run(inat, data, *FETCH, "--max-per-taxon", "5").exit_code == 0  # each capped elsewhere
    for cap, new in (("8", 3), (None, 4)):
        inat.clear_requests()
        result = run(inat, data, *FETCH, *(("--max-per-taxon", cap) if cap else ()))
        assert result.exit_code == 0
        assert len(pages(inat)) <= math.ceil(len(labels) / 200) + 1
        total = next(line.split() for line in result.stdout.splitlines() if line.startswith("total"))
        # new: only what is new, as in a walk apart; listed: all the job's photos (issue 22)
        assert total[3] == str(new * len(names))
        assert total[1] == str(int(total[2]) + int(total[3])) == str(int(cap or 12) * len(names))
        for taxon_id in names:
            own = [5000 + i for i, t in enumerate(labels) if t == taxon_id][: int(cap or 12)]
            got = sorted(int(r["observation_id"]) for r in manifest(data) if r["taxon_id"] == str(taxon_id))
            assert got == own, taxon_id
    assert len(manifest(data)) == len(labels)


def test_a_full_page_with_an_unreadable_observation_does_not_end_the_walk(
    inat: InatServer, tmp_path: Path
) -> None:
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(11, "Lythrum salicaria", parent_id=1)
    inat.photo_size_bytes = {"square": 100}
    inat.add_observations(11, 450, first_id=1000)
    first_page = [inat.observation(obs) for obs in range(1000, 1200)]
    first_page[100] = {"id": "1100"}  # an id that is not a number: left out, the page still full
    body = json.dumps({"total_results": 450, "page": 1, "per_page": 200, "results": first_page})
    inat.add_fault(Fault("status", target="observations", status=200, body=body, times=1))
    data = tmp_path / "data"
    write_taxa(data, [(11, "Lythrum salicaria")])
    assert run(inat, data, *FETCH).exit_code == 0
    assert len(pages(inat)) == 3
    assert {int(r["observation_id"]) for r in manifest(data)} == set(range(1000, 1450)) - {1100}


def test_progress_has_no_pages_left_once_every_taxon_of_the_job_is_capped(
    inat: InatServer, tmp_path: Path
) -> None:
    build_eight(inat)
    data = tmp_path / "data"
    listed(data, sorted(EIGHT))
    clock = FakeClock()
    client = ApiClient(inat.api_url, build_session(), clock, rate=1)
    options = FetchOptions(
        ("square",), Filters(ALL_LICENSES), 1, 10**12, 10**12, max_per_taxon=1, dry_run=True
    )
    reporter = RecordingReporter()
    fetch_photos(client, data, load_resolved_taxa(data), options, clock, reporter)
    served = len(pages(inat))
    assert served < math.ceil(TOTAL / 200)  # the walk stopped when the last taxon had its one
    assert reporter.pages[-1] == (served, 0)
