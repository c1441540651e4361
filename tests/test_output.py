"""What a user sees of a run: the progress bars' totals, and the command's output."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from fakes import FakeClock
from inat_server import Fault, InatServer
from test_batching import EIGHT, build_eight, listed
from test_stop import interrupt_at_photo
from test_summary import COLUMNS, table
from world import run, two_taxa, write_taxa

from inatdl.client import ApiClient, build_session
from inatdl.constants import ALL_LICENSES
from inatdl.fetch import FetchOptions, fetch_photos
from inatdl.observations import Filters
from inatdl.output.progress import LogReporter, TqdmReporter
from inatdl.state import DONE, FAILED, GONE, PENDING, Outcome, PhotoJob
from inatdl.taxa import load_resolved_taxa


class RecordingBar(TqdmReporter):
    """The photos bar's total as each observation page is done, and as each photo finishes."""

    def __init__(self) -> None:
        super().__init__()
        self.totals: list[tuple[int, int]] = []  # (pages done, the bar's total then)
        self.last_page_done = False
        self.after_the_last_page: list[int] = []  # the bar's total at each photo finished since

    def paged(self, done: int, left: int) -> None:
        super().paged(done, left)
        self.totals.append((done, int(self.photos.total or 0)))
        self.last_page_done = done > 0 and left == 0

    def finished(self, outcome: Outcome) -> None:
        super().finished(outcome)
        if self.last_page_done:
            self.after_the_last_page.append(int(self.photos.total or 0))


def test_the_photos_bar_counts_the_whole_job_from_its_first_page(inat: InatServer, tmp_path: Path) -> None:
    """Eight taxa, 902 observations in 5 pages: after the first page the bar's total is the
    job's, not the photos of one page (which read 89-98 % with 1-3 of 8 pages done)."""
    build_eight(inat)
    data = tmp_path / "data"
    listed(data, sorted(EIGHT))
    clock = FakeClock()
    client = ApiClient(inat.api_url, build_session(), clock, rate=1)
    options = FetchOptions("square", Filters(ALL_LICENSES), 1, 10**12, 10**12, dry_run=True)
    bar = RecordingBar()
    fetch_photos(client, data, load_resolved_taxa(data), options, clock, bar)
    job = int(bar.photos.total)
    bar.close()
    assert job == 902  # one photo an observation; the listing done, the total is exact
    after_first_page = dict(bar.totals)[1]
    # pages left are counted whole: the last one, short, may add a page's photos
    assert job <= after_first_page <= job + 200, bar.totals


def test_the_photos_bar_total_is_the_job_at_every_photo_after_the_last_page(
    inat: InatServer, tmp_path: Path
) -> None:
    """The workers' queue holds the listing back: the last page's photos enter it one by one
    long after the page is done, and the retries of an earlier run before any page. Once the
    last page is done the bar's total is the photos the run downloads, at every photo."""
    data = tmp_path / "data"
    two_taxa(inat, data, 100, "square")  # 200 photos: one page
    clock = FakeClock()
    client = ApiClient(inat.api_url, build_session(), clock, rate=1)
    options = FetchOptions("square", Filters(ALL_LICENSES), 1, 10**12, 10**12)
    failing = inat.add_fault(Fault("status", target="photo", status=500, rate=0.2))
    first = fetch_photos(client, data, load_resolved_taxa(data), options, clock)
    failed = first.total("failed")
    assert 20 < failed < 60, failed
    inat.remove_fault(failing)
    inat.add_observations(10, 250, first_id=6000)  # two more pages, the last of 50 photos
    inat.clear_requests()
    bar = RecordingBar()
    report = fetch_photos(client, data, load_resolved_taxa(data), options, clock, bar)
    bar.close()
    downloaded = [r for r in inat.photo_requests() if r.method == "GET"]
    assert report.total("downloaded") == len(downloaded) == failed + 250
    assert [done for done, _ in bar.totals][-1] == 2
    assert bar.after_the_last_page, bar.totals  # photos finished after the last page was done
    assert set(bar.after_the_last_page) == {failed + 250}
    assert int(bar.photos.total) == failed + 250


def _outcome(photo_id: int, status: str = DONE, received: int = 0, already_there: bool = False) -> Outcome:
    job = PhotoJob(photo_id, "square", f"https://photos.test/{photo_id}.jpg", f"photos/x/{photo_id}.jpg", 1)
    return Outcome(job, status, received, already_there=already_there)


def test_the_bytes_bar_has_a_total_estimated_from_the_photos_so_far() -> None:
    bar = TqdmReporter()
    bar.paged(0, 1)
    bar.paged(1, 3)  # the first of four pages
    bar.listed(10)
    assert bar.photos.total == 40
    assert bar.bytes.total is None  # nothing to estimate a photo's bytes from yet
    for photo_id in range(4):
        bar.finished(_outcome(photo_id, received=1000))
    bar.finished(_outcome(4, already_there=True, received=900))  # had: no byte came
    bar.finished(_outcome(5, FAILED))
    assert bar.bytes.n == 4000
    # 40 photos at the 4000 bytes the first 6 brought
    assert bar.bytes.total == 4000 + round((40 - 6) * 4000 / 6)
    bar.listed(25)
    bar.paged(4, 0)  # the listing is done: the photos listed are the job
    assert bar.photos.total == 35
    bar.close()


def test_a_dry_run_says_what_it_would_download_not_what_it_handled(world: InatServer, tmp_path: Path) -> None:
    """Issue 22's walk-through: a dry run ended with "0 of 591 photos handled"."""
    result = run(world, tmp_path / "data", "photos", "fetch", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1] == "24 photos to download (dry run: nothing downloaded)"
    assert "handled" not in result.stderr
    assert table(result.stdout, ("to download",))["total"]["to download"] == 24


def test_a_dry_runs_bar_counts_the_photos_to_download_as_they_are_listed() -> None:
    bar = TqdmReporter(dry_run=True)
    bar.paged(0, 2)
    bar.listed(10)
    bar.paged(1, 1)
    bar.listed(5)
    bar.paged(2, 0)
    assert (bar.photos.n, bar.photos.total) == (15, None)
    assert bar.photos.desc.startswith("photos to download (paging")
    assert bar.bytes.disable
    bar.close()


def _last_line(caplog: pytest.LogCaptureFixture, reporter: LogReporter) -> str:
    with caplog.at_level(logging.INFO, logger="inatdl"):
        reporter.close()
    return caplog.messages[-1]


def test_the_last_progress_line_counts_as_the_summary_does(caplog: pytest.LogCaptureFixture) -> None:
    """Finished photos by the summary's columns; a download dropped at a stop is left."""
    reporter = LogReporter()
    reporter.listed(10)
    for photo_id in range(4):
        reporter.finished(_outcome(photo_id, received=1000))
    reporter.finished(_outcome(4, already_there=True, received=900))
    reporter.finished(_outcome(5, FAILED))
    reporter.finished(_outcome(6, GONE))
    reporter.finished(_outcome(7, PENDING))  # dropped at a Ctrl-C: not finished
    line = "10 photos to download: 4 new, 1 had, 1 failed, 1 gone, 3 left; 4.0 kB downloaded"
    assert _last_line(caplog, reporter) == line
    dry = LogReporter(dry_run=True)
    dry.listed(7)
    assert _last_line(caplog, dry) == "7 photos to download (dry run: nothing downloaded)"


def test_after_a_ctrl_c_the_last_line_agrees_with_the_summary(world: InatServer, tmp_path: Path) -> None:
    """Issue 22's walk-through: "44 of 60 handled" over a summary of other numbers."""
    data = tmp_path / "data"
    sent = interrupt_at_photo(world, 6)
    result = run(world, data, "photos", "fetch", "--workers", "2")
    assert sent.is_set() and result.exit_code == 130, result.output
    total = table(result.stdout, COLUMNS)["total"]
    last = re.fullmatch(
        r"(\d+) photos to download: (.*), (\d+) left; .* downloaded", result.stderr.splitlines()[-2]
    )
    assert last is not None, result.stderr
    told = {column: int(count) for count, column in (part.split() for part in last[2].split(", "))}
    assert told == {c: total[c] for c in ("new", "failed", "gone") if total[c] or c == "new"}
    assert int(last[3]) == total["left"] > 0
    assert int(last[1]) == total["listed"] - total["skipped"]


def test_long_taxon_names_widen_the_column_and_a_cut_one_ends_with_an_ellipsis(
    inat: InatServer, tmp_path: Path
) -> None:
    """A subspecies beside its species, fetched in two sizes: the label "Oncorhynchus mykiss
    gairdneri (original)" is 40 characters; cut at 30 it read as the species. The column is as
    wide as the longest label (up to 60); a longer name is cut, and "…" says so."""
    hybrid = "Ambystoma laterale × Ambystoma jeffersonianum × Ambystoma texanum"  # 65 characters
    names = {31: "Oncorhynchus mykiss", 32: "Oncorhynchus mykiss gairdneri", 33: hybrid}
    inat.add_taxon(1, "Animalia", rank="kingdom")
    inat.add_taxon(31, names[31], parent_id=1)
    inat.add_taxon(32, names[32], rank="subspecies", parent_id=31)
    inat.add_taxon(33, hybrid, rank="hybrid", parent_id=1)
    for number, taxon_id in enumerate(names):
        inat.add_observations(taxon_id, 2, first_id=1000 + 10 * number)
    data = tmp_path / "data"
    write_taxa(data, list(names.items()))
    for dry_run in (("--dry-run",), ()):
        result = run(inat, data, "photos", "fetch", "--size", "square,original", *dry_run)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        header = next(i for i, line in enumerate(lines) if line.startswith("taxon "))
        table = lines[header : max(i for i, line in enumerate(lines) if line.startswith("total ")) + 1]
        assert len(table) == 1 + 6 + (3 if dry_run else 1)  # and the totals: each size, all
        assert {len(line) for line in table} == {len(table[0])}, table  # the columns line up
        assert table[0][:61] == "taxon".ljust(61)  # a column of 60 characters
        labels = [line[:60].rstrip() for line in table[1:7]]
        for size in ("square", "original"):
            assert f"Oncorhynchus mykiss ({size})" in labels
            assert f"Oncorhynchus mykiss gairdneri ({size})" in labels
            cut = f"{hybrid[: 60 - len(f' ({size})') - 1].rstrip()}… ({size})"
            assert cut in labels and len(cut) <= 60
