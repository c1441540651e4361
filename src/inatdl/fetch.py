"""`photos fetch`: page the taxa's observations, many taxa a query, record their photos,
download them.

The listing (main thread) and the downloads (worker threads) overlap: each page's photos
are recorded as pending in the state store with the paging cursor, in one transaction,
then queued; a bounded queue keeps memory flat however many observations a taxon has.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inatdl.budget import ByteBudget
from inatdl.client import ApiClient
from inatdl.clock import Clock
from inatdl.constants import (
    DRY_RUN_SAMPLE,
    MANIFEST_FILE,
    OBSERVATIONS_PER_PAGE,
    PHOTOS_DIR,
    SIZE_SAMPLE,
    STATE_FILE,
)
from inatdl.download import PART_INFO_SUFFIX, PART_SUFFIX, Downloader, PhotoSizes, head_length
from inatdl.errors import ApiError, InatdlError, LimitReached
from inatdl.files import disk_error
from inatdl.manifest import write_manifest
from inatdl.naming import safe_folder_name
from inatdl.observations import (
    Filters,
    choose_photo,
    lineage,
    observation_fields,
    observation_pages,
    observation_photos,
)
from inatdl.photo import PhotoRecord
from inatdl.plan import Query, QueryWalk, most_specific, plan_queries
from inatdl.reporter import Reporter, SilentReporter
from inatdl.state import (
    DONE,
    FAILED,
    GONE,
    PENDING,
    Cursor,
    DataDirLock,
    Outcome,
    PhotoJob,
    Store,
)
from inatdl.taxa import TaxonRow

log = logging.getLogger("inatdl")


@dataclass(frozen=True)
class FetchOptions:
    """Everything `photos fetch` was asked to do."""

    size: str
    filters: Filters
    workers: int
    hourly_limit: int
    daily_limit: int
    wait: bool = True
    max_per_taxon: int | None = None
    dry_run: bool = False


@dataclass
class TaxonReport:
    """What happened to one taxon in this run."""

    taxon_id: int
    name: str
    listed: int = 0
    queued: int = 0
    had: int = 0
    downloaded: int = 0
    bytes: int = 0
    failed: int = 0
    gone: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    estimated_bytes: int = 0


@dataclass
class FetchReport:
    """The whole run, for the summary and the exit code."""

    taxa: list[TaxonReport]
    manifest: Path
    dry_run: bool = False
    interrupted: bool = False
    error: InatdlError | None = None
    spent: dict[str, int] = field(default_factory=dict)  # bytes in each window at the end
    limits: dict[str, int] = field(default_factory=dict)
    sent: int = 0  # bytes the photo hosts sent this run, as the ledger counts them
    overruns: list[str] = field(default_factory=list)  # what went past a limit, and why
    api_requests: int = 0  # made by the listing, retries included
    pages: int = 0  # observation pages of the listing
    head_requests: int = 0  # to the photo hosts, for the --dry-run estimate
    moved: int = 0  # downloaded photos moved to the folder of a more specific taxon listed since

    def total(self, attribute: str) -> int:
        return sum(getattr(t, attribute) for t in self.taxa)


_STOP = None
ABORT_GRACE_SECONDS = 5.0


class _Run:
    """One fetch over a locked data dir."""

    def __init__(
        self,
        client: ApiClient,
        data_dir: Path,
        store: Store,
        options: FetchOptions,
        clock: Clock,
        reporter: Reporter,
        on_disk: OnDisk,
    ) -> None:
        self.client = client
        self.data_dir = data_dir
        self.store = store
        self.options = options
        self.reporter = reporter
        self.halt = threading.Event()  # start nothing new
        self.abort = threading.Event()  # and drop what is in flight (Ctrl-C, a full disk)
        self.fatal: BaseException | None = None
        self.budget = ByteBudget(
            store,
            clock,
            options.hourly_limit,
            options.daily_limit,
            wait=options.wait,
            on_wait=reporter.waiting,
            cancel=self.abort,
        )
        self.downloader = Downloader(
            client.session,
            data_dir,
            self.budget,
            clock,
            self.abort,
            timeout=client.timeout,
            sizes=PhotoSizes(lambda size: store.recent_sizes(size, SIZE_SAMPLE)),
            kept_parts=on_disk.kept_parts,
        )
        self.untracked = on_disk.untracked  # files a photo new to the state may find there
        self.jobs = _JobQueue(max(16, options.workers * 4))
        self.reports: dict[int, TaxonReport] = {}
        self._lock = threading.Lock()
        self.pages_done = 0  # observation pages this run, for progress
        self.moved = 0  # downloaded photos moved to a more specific taxon's folder
        self.queries_left = 0  # queries of the plan not started yet
        self.seen_up_to = 0  # the highest observation id known to exist (see QueryWalk.finished)

    # Workers ---------------------------------------------------------------------------

    def _work(self, ended: threading.Event) -> None:
        try:
            while (job := self.jobs.get()) is not _STOP:
                try:
                    if not self.halt.is_set():
                        outcome = self.downloader.download(job)
                    elif self.abort.is_set():
                        continue
                    # stopped at a limit: a photo complete on disk costs no byte, so it is recorded
                    elif (there := self.downloader.already_there(job)) is not None:
                        outcome = there
                    else:
                        continue
                    if outcome.status != PENDING:
                        self.store.record(outcome)
                    self._count(outcome)
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                    self._fail(exc)
        finally:
            ended.set()

    def _fail(self, exc: BaseException) -> None:
        """Stop the run for ``exc``; at a byte limit, the downloads in flight still finish."""
        with self._lock:
            if self.fatal is None or isinstance(self.fatal, LimitReached):
                self.fatal = exc  # a worse error than a limit is the one to tell
        self.halt.set()
        if not isinstance(exc, LimitReached):
            self.abort.set()

    def _interrupt(self) -> None:
        self.halt.set()
        self.abort.set()

    def _count(self, outcome: Outcome) -> None:
        with self._lock:
            report = self.reports[outcome.job.taxon_id]
            if outcome.status == DONE:
                report.downloaded += not outcome.already_there
                report.had += outcome.already_there
                report.bytes += 0 if outcome.already_there else outcome.bytes
            elif outcome.status == FAILED:
                report.failed += 1
                report.errors[outcome.error] += 1
            elif outcome.status == GONE:
                report.gone += 1
        self.reporter.finished(outcome)

    def _put(self, job: PhotoJob) -> None:
        self.reports[job.taxon_id].queued += 1
        self.reporter.queued(1)
        if self.options.dry_run:
            return
        while not self.halt.is_set():
            if self.jobs.put(job, timeout=0.2):
                return

    # Listing ---------------------------------------------------------------------------

    def list_all(self, taxa: Iterable[TaxonRow]) -> None:
        """Queue what earlier runs with these filters left to do, then walk the query plan."""
        listed: dict[int, _Listed] = {}
        for taxon in taxa:
            assert taxon.taxon_id is not None
            if taxon.taxon_id not in listed:
                listed[taxon.taxon_id] = self._take_over(taxon)
            if self.halt.is_set():
                return
        cap = self.options.max_per_taxon
        cursors = {
            taxon_id: self.store.cursor(entry.key)
            for taxon_id, entry in listed.items()
            if cap is None or entry.held < cap
        }
        size = self.options.size

        def recorded(taxa: Sequence[int], above: int, up_to: int) -> int:
            return self.store.observations_recorded(taxa, size, above, up_to)

        queries = plan_queries(cursors, recorded=recorded)
        self.seen_up_to = self.store.highest_cursor()
        for number, query in enumerate(queries):
            self.queries_left = len(queries) - number - 1
            self._walk(query, listed)
            if self.halt.is_set():
                return

    def _take_over(self, taxon: TaxonRow) -> _Listed:
        """A taxon's report, its photos held so far, and its retries queued (up to the cap)."""
        assert taxon.taxon_id is not None
        taxon_id, size, cap = taxon.taxon_id, self.options.size, self.options.max_per_taxon
        report = self.reports[taxon_id] = TaxonReport(taxon_id, taxon.name)
        key = self.options.filters.key(taxon_id, size)
        self.store.forget_other_listings(taxon_id, size, key)
        counts = self.store.status_counts(taxon_id, size)
        report.had = counts.get(DONE, 0)
        held = report.had + counts.get(PENDING, 0) + counts.get(FAILED, 0)
        retries = self.store.jobs_to_retry(taxon_id, size)
        for job in itertools.islice(retries, None if cap is None else max(0, cap - report.had)):
            if self.halt.is_set():
                break
            self._put(job)
        folder = f"{PHOTOS_DIR}/{safe_folder_name(taxon.name, str(taxon_id))}"
        return _Listed(taxon, folder, key, held, report)

    def _walk(self, query: Query, listed: dict[int, _Listed]) -> None:
        """Page one query, each observation to its most specific listed taxon; a taxon that
        reaches its cap leaves the query; the cursors move with each page's photos."""
        walk = QueryWalk(query)
        self.reporter.listing(_names([listed[taxon_id].taxon.name for taxon_id in query.taxon_ids]))
        self.reporter.paged(self.pages_done, 1 + self.queries_left)
        position = query.after_id

        def remaining(observations: int) -> None:
            self.pages_done += 1
            pages = -(-observations // OBSERVATIONS_PER_PAGE)
            self.reporter.paged(self.pages_done, pages + self.queries_left)

        def params() -> dict[str, Any]:  # asked before each page: capped taxa are left out
            return self.options.filters.params(walk.active)

        for page in observation_pages(self.client, params, query.after_id, remaining):
            rows = self._page_rows(page, walk, listed, position)
            position = max(int(o["id"]) for o in page)
            self.seen_up_to = max(self.seen_up_to, position)
            walk.page_done(position)
            self._record(walk, listed, rows)
            if self.halt.is_set():
                return
            if not walk.active:  # every taxon capped: its pages left are not asked
                self.reporter.paged(self.pages_done, self.queries_left)
                return
        walk.finished(self.seen_up_to)
        self._record(walk, listed, [])

    def _record(self, walk: QueryWalk, listed: dict[int, _Listed], rows: list[PhotoRecord]) -> None:
        cursors = [Cursor(listed[t].key, t, last_id) for t, last_id in walk.cursors.items()]
        self.store.record_page(cursors, rows)
        for row in rows:
            may_be_on_disk = row.path in self.untracked
            self._put(PhotoJob(row.photo_id, row.size, row.url, row.path, row.taxon_id, may_be_on_disk))

    def _page_rows(
        self, page: Sequence[dict[str, Any]], walk: QueryWalk, listed: dict[int, _Listed], position: int
    ) -> list[PhotoRecord]:
        """The new photo rows of a page, each taxon up to --max-per-taxon; a taxon that
        reaches it is dropped from the walk, complete up to the observation before."""
        size, cap = self.options.size, self.options.max_per_taxon
        photos = [(observation, observation_photos(observation)) for observation in page]
        photo_ids = [p["id"] for _, listed_photos in photos for p in listed_photos]
        recorded = self.store.recorded(photo_ids, size)
        known = set(recorded)
        homes = {pid: (taxon, path) for pid, (status, taxon, path) in recorded.items() if status == DONE}
        routes = {int(o["id"]): most_specific(lineage(o), listed) for o in page}
        unplaced = [observation_id for observation_id, taxon_id in routes.items() if taxon_id is None]
        if unplaced:
            routes.update(self._place(unplaced, walk.active))
        rows: list[PhotoRecord] = []
        before = position  # the last observation of the page before this one
        for observation, observation_photo_list in photos:
            fields = observation_fields(observation)
            taxon_id = routes[fields["observation_id"]]
            # capped, another query's, or recorded already (its taxon joined from further on)
            if taxon_id not in walk.active or fields["observation_id"] <= walk.cursors[taxon_id]:
                before = fields["observation_id"]
                continue
            entry = listed[taxon_id]
            capped_inside = False
            for photo in observation_photo_list:
                choice = choose_photo(photo, self.options.filters.licenses, size)
                entry.report.listed += 1
                if choice.skip:
                    entry.report.skipped[choice.skip] += 1
                    continue
                home = homes.get(choice.photo_id)
                if choice.photo_id in known and (home is None or home[0] == taxon_id):
                    continue
                if cap is not None and entry.held >= cap:
                    capped_inside = True
                    break
                entry.held += 1
                known.add(choice.photo_id)
                row = PhotoRecord(
                    photo_id=choice.photo_id,
                    observation_id=fields["observation_id"],
                    taxon_id=taxon_id,
                    taxon_name=entry.taxon.name,
                    observed_taxon_id=fields["observed_taxon_id"],
                    observed_taxon_name=fields["observed_taxon_name"],
                    size=size,
                    path=f"{entry.folder}/{choice.photo_id}_{size}.{choice.extension}",
                    url=choice.url,
                    license_code=choice.license_code,
                    attribution=choice.attribution,
                    observer=fields["observer"],
                    quality_grade=fields["quality_grade"],
                    latitude=fields["latitude"],
                    longitude=fields["longitude"],
                    observed_on=fields["observed_on"],
                    observation_url=fields["observation_url"],
                    observation_uuid=fields["observation_uuid"],
                    positional_accuracy=fields["positional_accuracy"],
                    coordinates_obscured=fields["coordinates_obscured"],
                    query=entry.key,
                )
                if home is None:
                    rows.append(row)
                else:
                    self._move_home(row, *home, listed)
            if capped_inside:  # what the cap allowed of this observation is kept, the rest not
                walk.drop(taxon_id, before)
            elif cap is not None and entry.held >= cap:
                walk.drop(taxon_id, fields["observation_id"])
            before = fields["observation_id"]
        return rows

    def _move_home(self, row: PhotoRecord, old_taxon: int, old_path: str, listed: dict[int, _Listed]) -> None:
        """A photo downloaded for a taxon, whose observation now goes to a more specific one
        listed since (a variety added to the list): its file moves to that taxon's folder,
        with no request. Linked before the state names the new path and unlinked after, so a
        kill at any instant leaves the file where the state says."""
        if self.options.dry_run:
            return
        if old_path == row.path:  # a taxon named as the one it was under (genus, subgenus)
            self._moved(row, old_taxon, listed)
            return
        source, target = self.data_dir / old_path, self.data_dir / row.path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.link(source, target)
        except OSError as exc:
            log.warning("could not move %s to %s: %s; it stays where it is", old_path, row.path, exc)
            return
        self._moved(row, old_taxon, listed)
        source.unlink(missing_ok=True)

    def _moved(self, row: PhotoRecord, old_taxon: int, listed: dict[int, _Listed]) -> None:
        """The state and the counts of a photo now the more specific taxon's."""
        self.store.move_photo(row)
        self.moved += 1
        listed[row.taxon_id].report.had += 1
        if old_taxon in listed:
            listed[old_taxon].held -= 1
            listed[old_taxon].report.had -= 1

    def _place(self, observation_ids: Sequence[int], taxa: Sequence[int]) -> dict[int, int]:
        """The taxon of ``taxa`` (those the page was asked for) under which the API found
        each observation whose lineage names none of them (its taxon was moved upstream and
        the observation not re-indexed yet, or the API left the ancestors out).

        Halves of the taxa are asked which of the observations they find, until one taxon
        is left: about log2(taxa) requests, only for a page holding such observations.
        """
        placed: dict[int, int] = {}
        to_place = [(list(observation_ids), list(taxa))]
        while to_place:
            ids, candidates = to_place.pop()
            if len(candidates) == 1:
                placed.update(dict.fromkeys(ids, candidates[0]))
                continue
            half = candidates[: len(candidates) // 2]
            query = {
                **self.options.filters.params(half),
                "id": ",".join(map(str, ids)),
                "per_page": OBSERVATIONS_PER_PAGE,
                "only_id": "true",
            }
            results = self.client.get("observations", query).get("results")
            results = results if isinstance(results, list) else []
            found = {o.get("id") for o in results if isinstance(o, dict)}
            inside = [i for i in ids if i in found]
            outside = [i for i in ids if i not in found]
            if inside:
                to_place.append((inside, half))
            if outside:  # found by the query, so under the other half
                to_place.append((outside, candidates[len(half) :]))
        return placed

    # The run ---------------------------------------------------------------------------

    def run(self, taxa: Iterable[TaxonRow]) -> FetchReport:
        workers = [] if self.options.dry_run else [threading.Event() for _ in range(self.options.workers)]
        for number, ended in enumerate(workers):
            threading.Thread(
                target=self._work, args=(ended,), name=f"inatdl-worker-{number}", daemon=True
            ).start()
        report = FetchReport([], self.data_dir / MANIFEST_FILE, dry_run=self.options.dry_run)
        requests_before = self.client.requests_made
        try:
            self.list_all(taxa)
        except ApiError as exc:
            report.error = exc  # the downloads already queued still finish
        except KeyboardInterrupt:
            report.interrupted = True
            self._interrupt()
        except BaseException:
            self._interrupt()
            raise
        finally:
            report.interrupted |= self._finish(workers)
            report.taxa = list(self.reports.values())
            report.api_requests = self.client.requests_made - requests_before
            report.pages = self.pages_done
            report.moved = self.moved
        if self.fatal is not None:
            if isinstance(self.fatal, InatdlError):
                report.error = self.fatal
            else:
                raise self.fatal
        if self.options.dry_run and not report.interrupted:
            self.estimate(report)
        report.spent = {window: self.budget.spent(window) for window in self.budget.windows}
        report.limits = {name: window.limit for name, window in self.budget.windows.items()}
        report.sent, report.overruns = self.budget.sent, self.budget.overruns
        return report

    def _finish(self, workers: list[threading.Event]) -> bool:
        """Let the workers end (after the queue, or at once when stopping); True if Ctrl-C.

        A worker is known to have ended by its event, not Thread.is_alive: after a join that
        Ctrl-C interrupted, Python 3.11 says a thread is no longer alive though it runs on.
        """
        interrupted = False
        for _ in workers:
            while True:
                try:
                    if self.jobs.put(_STOP, timeout=0.2):
                        break
                    if self.halt.is_set():
                        self.jobs.clear()
                except KeyboardInterrupt:
                    interrupted = True
                    self._interrupt()
        give_up_at: float | None = None
        for ended in workers:
            while not ended.is_set():
                if self.abort.is_set():
                    # A worker stuck in a stalled read is left behind (a daemon thread);
                    # its temporary file is swept by the next run.
                    give_up_at = give_up_at or time.monotonic() + ABORT_GRACE_SECONDS
                    if time.monotonic() >= give_up_at:
                        break
                try:
                    ended.wait(timeout=0.2)
                except KeyboardInterrupt:
                    interrupted = True
                    self._interrupt()
        self.budget.close()
        self.store.flush()
        return interrupted

    def estimate(self, report: FetchReport) -> None:
        """For --dry-run: the size of a few photos, asked with HEAD, scaled to the rest."""
        sampled: list[int] = []
        for taxon in report.taxa:
            jobs = self.store.jobs_to_retry(taxon.taxon_id, self.options.size, batch=DRY_RUN_SAMPLE)
            for job in itertools.islice(jobs, DRY_RUN_SAMPLE):
                report.head_requests += 1
                length = head_length(self.downloader.session, job.url, self.client.timeout)
                if length is not None:
                    sampled.append(length)
        average = sum(sampled) // len(sampled) if sampled else 0
        for taxon in report.taxa:
            counts = self.store.status_counts(taxon.taxon_id, self.options.size)
            taxon.queued = counts.get(PENDING, 0) + counts.get(FAILED, 0)
            taxon.estimated_bytes = taxon.queued * average


@dataclass
class _Listed:
    """A taxon of this run: where its photos go, its walk's name, and its photos so far."""

    taxon: TaxonRow
    folder: str
    key: str  # Filters.key: its cursor and its photos' query
    held: int  # photos downloaded, pending or failed: what --max-per-taxon counts
    report: TaxonReport


def _names(names: Sequence[str]) -> str:
    """The taxa of a query, for progress: "A", "A and B", "A and 7 other taxa"."""
    if len(names) <= 2:
        return " and ".join(names)
    return f"{names[0]} and {len(names) - 1} other taxa"


class _JobQueue:
    """The photo jobs from the listing to the workers, bounded so that memory stays flat.

    The listing is woken when the queue has drained to half, then fills it in one go:
    with queue.Queue it would be woken for every photo taken, taking the GIL from the
    workers hundreds of times a second to put one job each.
    """

    def __init__(self, capacity: int) -> None:
        self._jobs: deque[PhotoJob | None] = deque()
        self._capacity = capacity
        self._lock = threading.Lock()
        self._added = threading.Condition(self._lock)
        self._drained = threading.Condition(self._lock)

    def put(self, job: PhotoJob | None, timeout: float) -> bool:
        """Add ``job``; False when the queue is still full after ``timeout`` seconds."""
        with self._lock:
            if not self._drained.wait_for(lambda: len(self._jobs) < self._capacity, timeout):
                return False
            self._jobs.append(job)
            self._added.notify()
            return True

    def get(self) -> PhotoJob | None:
        with self._lock:
            self._added.wait_for(lambda: self._jobs)
            job = self._jobs.popleft()
            if len(self._jobs) <= self._capacity // 2:
                self._drained.notify()
            return job

    def clear(self) -> None:
        """Drop the jobs not started (the run is stopping); the workers' stops stay."""
        with self._lock:
            self._jobs = deque(job for job in self._jobs if job is _STOP)
            self._drained.notify_all()


@dataclass(frozen=True)
class OnDisk:
    """What the sweep at the start of a run found under photos/."""

    kept_parts: set[str]  # photo paths whose .part a download may resume (download.py)
    untracked: set[str]  # photo files the state does not name as downloaded (usually none)


def sweep_photos(data_dir: Path, store: Store) -> OnDisk:
    """Remove temporaries a crash left, and mark photos whose file was deleted as to do.

    A photo's .part is kept when its .part.info names the body it holds (download.py), for
    the download to resume it with If-Range. The files the state does not name as
    downloaded are the only ones a photo new to the state can find on disk (a state file
    moved away, a run killed before recording its last photos): the workers look for the
    others' files only when they are in that set, not once a photo.
    """
    for leftover in data_dir.glob(".*.part"):  # of photos.csv or taxa.csv
        leftover.unlink()
    photos = data_dir / PHOTOS_DIR
    present: set[str] = set()
    parts: set[str] = set()
    infos: set[str] = set()
    if photos.is_dir():
        for folder in os.scandir(photos):
            if not folder.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(folder.path):
                name = f"{PHOTOS_DIR}/{folder.name}/{entry.name}"
                if entry.name.endswith(PART_SUFFIX):
                    parts.add(name.removesuffix(PART_SUFFIX))
                elif entry.name.endswith(PART_INFO_SUFFIX):
                    infos.add(name.removesuffix(PART_INFO_SUFFIX))
                elif PART_SUFFIX in entry.name:  # a .part.info being written
                    os.unlink(entry.path)
                else:
                    present.add(name)
    kept = (parts & infos) - present
    for name in parts - kept:
        os.unlink(data_dir / (name + PART_SUFFIX))
    for name in infos - kept:
        os.unlink(data_dir / (name + PART_INFO_SUFFIX))
    missing = []
    for photo_id, size, path in store.done_paths():
        if path in present:
            present.discard(path)
        else:
            missing.append((photo_id, size))
    if missing:
        log.info("%d downloaded photos are no longer on disk; fetching them again", len(missing))
        store.mark_missing(missing)
    return OnDisk(kept, present)


def fetch_photos(
    client: ApiClient,
    data_dir: Path,
    taxa: Sequence[TaxonRow],
    options: FetchOptions,
    clock: Clock,
    reporter: Reporter | None = None,
) -> FetchReport:
    """Fetch the photos of ``taxa`` into ``data_dir``; safe to stop and run again."""
    reporter = reporter or SilentReporter()
    with DataDirLock(data_dir):
        store = Store(data_dir / STATE_FILE, clock)
        try:
            try:
                on_disk = sweep_photos(data_dir, store)
            except OSError as exc:
                raise disk_error(exc, data_dir / PHOTOS_DIR) from None
            run = _Run(client, data_dir, store, options, clock, reporter, on_disk)
            try:
                report = run.run(taxa)
            finally:
                reporter.close()
            if not options.dry_run:
                write_manifest(store, report.manifest)
            return report
        finally:
            store.close()
