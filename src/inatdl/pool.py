"""The worker pool: threads that download the photo jobs queued by the listing, and the one
:class:`Stop` that ends a run.

A run stops softly at a byte limit (nothing new starts; downloads in flight finish, and a
photo already complete on disk is still recorded, since it costs no byte) and hard at
Ctrl-C, SIGTERM or a full disk (downloads in flight are dropped; their .part files are
kept or swept by the next run).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from inatdl.download import Downloader
from inatdl.errors import LimitReached
from inatdl.state import PENDING, Outcome, PhotoJob, Store

_END = None  # a worker's last job
HARD_STOP_GRACE_SECONDS = 5.0


class Stop:
    """One stop for the whole run: soft (start nothing new) or hard (drop what is in flight).

    ``hard_event`` is what the downloads and the budget's waits watch: they end at a hard
    stop only.
    """

    def __init__(self) -> None:
        self._soft = threading.Event()
        self.hard_event = threading.Event()

    def soft(self) -> None:
        """Start nothing new; downloads in flight finish (a byte limit reached)."""
        self._soft.set()

    def hard(self) -> None:
        """Start nothing new and drop downloads in flight (Ctrl-C, SIGTERM, a full disk)."""
        self._soft.set()
        self.hard_event.set()

    @property
    def stopping(self) -> bool:
        return self._soft.is_set()

    @property
    def dropping(self) -> bool:
        return self.hard_event.is_set()


class Pool:
    """``workers`` threads downloading the queued jobs, until :meth:`finish`."""

    def __init__(
        self,
        downloader: Downloader,
        store: Store,
        stop: Stop,
        workers: int,
        on_outcome: Callable[[Outcome], None],
    ) -> None:
        self.downloader = downloader
        self.store = store
        self.stop = stop
        self.on_outcome = on_outcome
        self.jobs = JobQueue(max(16, workers * 4))
        self.fatal: BaseException | None = None  # what stopped the run, for the main thread
        self._lock = threading.Lock()
        self._ended = [threading.Event() for _ in range(workers)]
        self._ends_queued = 0
        for number, ended in enumerate(self._ended):
            threading.Thread(
                target=self._work, args=(ended,), name=f"inatdl-worker-{number}", daemon=True
            ).start()

    def put(self, job: PhotoJob) -> None:
        """Queue ``job``, waiting while the queue is full. Once the run stops at a limit it is
        only recorded if complete on disk (here, not left to a race with the workers); at a
        hard stop it is dropped."""
        while not self.stop.stopping:
            if self.jobs.put(job, timeout=0.2):
                return
        self._record_if_there(job)

    def _record_if_there(self, job: PhotoJob) -> None:
        """At a byte limit, a photo complete on disk costs no byte, so it is still recorded."""
        if not self.stop.dropping and (there := self.downloader.already_there(job)) is not None:
            self.store.record(there)
            self.on_outcome(there)

    def _work(self, ended: threading.Event) -> None:
        try:
            while (job := self.jobs.get()) is not _END:
                try:
                    if self.stop.stopping:
                        self._record_if_there(job)
                        continue
                    outcome = self.downloader.download(job)
                    if outcome.status != PENDING:
                        self.store.record(outcome)
                    self.on_outcome(outcome)
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                    self._fail(exc)
        finally:
            ended.set()

    def _fail(self, exc: BaseException) -> None:
        """Stop the run for ``exc``; at a byte limit, the downloads in flight still finish."""
        with self._lock:
            if self.fatal is None or isinstance(self.fatal, LimitReached):
                self.fatal = exc  # a worse error than a limit is the one to tell
        if isinstance(exc, LimitReached):
            self.stop.soft()
        else:
            self.stop.hard()

    def finish(self) -> bool:
        """Let the workers end (after the queue, or at once when stopping); True if Ctrl-C.
        Safe to call again after a Ctrl-C that interrupted it.

        A worker is known to have ended by its event, not Thread.is_alive: after a join that
        Ctrl-C interrupted, Python 3.11 says a thread is no longer alive though it runs on.
        """
        interrupted = False
        while self._ends_queued < len(self._ended):  # counted, so that finish can run again
            try:
                if self.jobs.put(_END, timeout=0.2):
                    self._ends_queued += 1
                elif self.stop.stopping:
                    for job in self.jobs.clear():
                        self._record_if_there(job)
            except KeyboardInterrupt:
                interrupted = True
                self.stop.hard()
        give_up_at: float | None = None
        for ended in self._ended:
            while not ended.is_set():
                if self.stop.dropping:
                    # A worker stuck in a stalled read is left behind (a daemon thread);
                    # its temporary file is swept by the next run.
                    give_up_at = give_up_at or time.monotonic() + HARD_STOP_GRACE_SECONDS
                    if time.monotonic() >= give_up_at:
                        break
                try:
                    ended.wait(timeout=0.2)
                except KeyboardInterrupt:
                    interrupted = True
                    self.stop.hard()
        return interrupted


class JobQueue:
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

    def clear(self) -> list[PhotoJob]:
        """Take out the jobs not started (the run is stopping); the workers' ends stay."""
        with self._lock:
            cleared = [job for job in self._jobs if job is not _END]
            self._jobs = deque(job for job in self._jobs if job is _END)
            self._drained.notify_all()
        return cleared
