"""The byte budget: rolling hourly and daily windows over every byte the photo hosts send.

A photo is admitted *before* its request: its bytes are reserved in the windows first, so
the hosts never send a body the budget has no room for. Every reserved byte is in the
ledger on disk before the request goes out: bytes are reserved in leases (one row and one
commit per lease, not per photo) written as if all of the lease were spent at its latest
possible moment, so a crash can only overcount. When a download ends, its reservation is
replaced by the bytes the host sent (see download.py for how those are judged).

How much a photo reserves, and when it is asked for, is PhotoAdmission's policy: a high
percentile of the sizes seen (PhotoSizes), its HEAD's length near a limit, and a stop at
once (LimitTooSmall) when no wait can make room for it.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from inatdl.clock import Clock
from inatdl.constants import (
    CAUTIOUS_PHOTO_BYTES,
    DAY,
    HEAD_WITHIN_PHOTOS,
    HOUR,
    LEASE_FRACTION,
    LEASE_MAX_BYTES,
    LEASE_SECONDS,
    SIZE_PERCENTILE,
)
from inatdl.errors import LimitReached, LimitTooSmall
from inatdl.state import Store
from inatdl.units import format_size

IN_FLIGHT_RECHECK = 0.25  # seconds (real ones) between looks at the stop while downloads settle
BUCKET_SECONDS = 10.0  # admissions this close together are counted together
SIZE_BUCKET_RATIO = 1.0905  # photo sizes are counted in buckets about 9 % wide


class WaitCancelled(Exception):
    """The run stopped (Ctrl-C) while waiting for the budget."""


@dataclass
class _Lease:
    id: int
    capacity: int
    used: int
    opened_at: float
    last_at: float


@dataclass
class _Bucket:
    """Bytes admitted within a few seconds, counted as if all at the latest of them."""

    at: float
    bytes: int


@dataclass
class _Part:
    """Reserved bytes of a ticket and the lease holding them on disk."""

    bytes: int
    lease_id: int


@dataclass
class Ticket:
    """One admitted download: what it has reserved."""

    parts: list[_Part]

    @property
    def bytes(self) -> int:
        return sum(part.bytes for part in self.parts)


class PhotoSizes:
    """How large the photos of each size are, to reserve enough before a request.

    A histogram of sizes in buckets about 9 % wide, begun with the sizes the state holds:
    adding a size and reading the percentile cost no more than a few operations a photo.
    """

    def __init__(self, recorded: Callable[[str], Iterable[int]] = lambda size: ()) -> None:
        self._recorded = recorded
        self._counts: dict[str, Counter[int]] = {}
        self._estimates: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, size: str, num_bytes: int) -> None:
        with self._lock:
            self._histogram(size)[_bucket(num_bytes)] += 1
            self._estimates.pop(size, None)

    def estimate(self, size: str) -> int:
        """A high percentile of the sizes seen; a cautious default before any."""
        with self._lock:
            estimate = self._estimates.get(size)
            if estimate is None:
                counts = self._histogram(size)
                estimate = self._estimates[size] = _percentile(counts) or CAUTIOUS_PHOTO_BYTES[size]
            return estimate

    def smallest(self, size: str) -> int:
        """About the smallest size seen (its bucket's lower edge); 0 before any."""
        with self._lock:
            counts = self._histogram(size)
            return int(SIZE_BUCKET_RATIO ** min(counts)) if counts else 0

    def _histogram(self, size: str) -> Counter[int]:
        counts = self._counts.get(size)
        if counts is None:
            counts = self._counts[size] = Counter(_bucket(n) for n in self._recorded(size))
        return counts


def _bucket(num_bytes: int) -> int:
    return int(math.log(max(1, num_bytes), SIZE_BUCKET_RATIO))


def _percentile(counts: Counter[int]) -> int:
    """The upper edge of the bucket holding the SIZE_PERCENTILE-th size; 0 when empty."""
    total = sum(counts.values())
    above = (1 - SIZE_PERCENTILE) * total
    for bucket in sorted(counts, reverse=True):
        above -= counts[bucket]
        if above < 0:
            return math.ceil(SIZE_BUCKET_RATIO ** (bucket + 1))
    return 0


class _Window:
    """A running sum of the buckets younger than ``length`` seconds, and of the bytes
    reserved by downloads in flight (which count until they settle, however long)."""

    def __init__(self, length: float, limit: int) -> None:
        self.length = length
        self.limit = limit
        self.buckets: deque[_Bucket] = deque()
        self.total = 0
        self.reserved = 0

    @property
    def used(self) -> int:
        return self.total + self.reserved

    def add(self, bucket: _Bucket) -> None:
        self.buckets.append(bucket)
        self.total += bucket.bytes

    def expire(self, now: float) -> None:
        while self.buckets and self.buckets[0].at <= now - self.length:
            self.total -= self.buckets.popleft().bytes

    def free_at(self, now: float, num_bytes: int) -> float:
        """The earliest time at which ``num_bytes`` more would fit."""
        excess = self.used + num_bytes - self.limit
        if excess <= 0:
            return now
        for bucket in sorted(self.buckets, key=lambda b: b.at):
            excess -= bucket.bytes
            if excess <= 0:
                return bucket.at + self.length
        return now + self.length


class ByteBudget:
    """Admits downloads against the limits; shared by every worker of a run."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        hourly_limit: int,
        daily_limit: int,
        wait: bool = True,
        on_wait: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.wait = wait
        self.on_wait = on_wait or (lambda message: None)
        self.cancel = cancel or threading.Event()
        self.windows = {"hourly": _Window(HOUR, hourly_limit), "daily": _Window(DAY, daily_limit)}
        self.largest = min(hourly_limit, daily_limit)  # no single download can be larger
        self.lease_size = max(1, min(LEASE_MAX_BYTES, int(min(hourly_limit, daily_limit) * LEASE_FRACTION)))
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)  # a download in flight ended or shrank
        self._lease: _Lease | None = None
        self._announced: float | None = None
        self._in_flight = 0  # admitted tickets not yet settled
        self.sent = 0  # bytes this run counted as sent by the hosts
        self.overruns: list[str] = []  # what went past a limit, and why (said in the summary)
        now = clock.now()
        self._bucket: _Bucket | None = None  # the newest, still taking admissions
        self._bucket_opened = 0.0
        store.settle_kept_lease()  # a lease a full disk left counted whole
        for at, num_bytes in store.ledger_since(now - DAY):
            self._add_bucket(_Bucket(at, num_bytes))

    def spent(self, window: str) -> int:
        with self._lock:
            self.windows[window].expire(self.clock.now())
            return self.windows[window].used

    def room(self) -> int:
        """Bytes that still fit in both windows now."""
        with self._lock:
            return self._room()

    def _room(self) -> int:
        now = self.clock.now()
        for window in self.windows.values():
            window.expire(now)
        return min(window.limit - window.used for window in self.windows.values())

    def admit_with_margin(self, num_bytes: int, margin: int) -> Ticket | None:
        """Reserve ``num_bytes`` if ``margin`` bytes still fit in both windows, else None:
        the common case, far from any limit, in one look (see PhotoAdmission)."""
        with self._lock:
            return self._ticket(num_bytes) if self._room() >= margin else None

    def admit(self, num_bytes: int, what: str = "a download is") -> Ticket:
        """Reserve ``num_bytes`` before a request, waiting for room (LimitReached under
        --no-wait, WaitCancelled at Ctrl-C, LimitTooSmall at once if it can never fit)."""
        while not isinstance(admitted := self.try_admit(num_bytes, what), Ticket):
            self.wait_until(*admitted)
        return admitted

    def check_fits(self, num_bytes: int, what: str) -> None:
        """Raise LimitTooSmall when ``num_bytes`` are more than a whole limit."""
        for name, window in self.windows.items():
            if num_bytes > window.limit:
                raise LimitTooSmall(
                    f"{what} {format_size(num_bytes)}, more than the whole {name} limit "
                    f"({format_size(window.limit)}): no wait makes room for it; raise --{name}-limit"
                )

    def _blocked_until(self, now: float, num_bytes: int, what: str) -> tuple[float, str]:
        self.check_fits(num_bytes, what)
        until, which = now, ""
        for name, window in self.windows.items():
            window.expire(now)
            free = window.free_at(now, num_bytes)
            if free > until:
                until, which = free, name
        return until, which

    def try_admit(self, num_bytes: int, what: str = "a download is") -> Ticket | tuple[float, str]:
        """Reserve ``num_bytes`` now if they fit; else (when they will, which limit)."""
        with self._lock:
            now = self.clock.now()
            until, which = self._blocked_until(now, num_bytes, what)
            if until > now:
                return until, which
            return self._ticket(num_bytes)

    def _ticket(self, num_bytes: int) -> Ticket:
        """An admitted download's ticket, its bytes reserved (the lock held)."""
        ticket = Ticket([self._part(num_bytes)])
        self._in_flight += 1
        return ticket

    def resize(self, ticket: Ticket, num_bytes: int, what: str) -> bool:
        """Make ``ticket`` reserve ``num_bytes``, once a body's length is known.

        Shrinking always works. Growing takes the difference from the windows when it
        fits; when it does not, the host is sending those bytes anyway: they are counted
        all the same, the overrun is recorded for the summary, and False is returned.
        """
        with self._lock:
            now = self.clock.now()
            extra = num_bytes - ticket.bytes
            if extra <= 0:
                self._release(ticket, -extra)
                self._settled.notify_all()
                return True
            for window in self.windows.values():
                window.expire(now)
            over = [(n, w) for n, w in self.windows.items() if w.used + extra > w.limit]
            ticket.parts.append(self._part(extra))
            for name, window in over:
                self.overruns.append(
                    f"{what} was {format_size(extra)} larger than the room reserved for it and the "
                    f"{name} window had no room left: its bytes were sent anyway and are counted, "
                    f"so that window holds {format_size(window.used)} of its "
                    f"{format_size(window.limit)} limit until they age out"
                )
            return not over

    def wait_for_room(self, num_bytes: int) -> None:
        """Wait, without reserving, until ``num_bytes`` would fit; under --no-wait, raise
        LimitReached only when nothing in flight may still free room."""
        while True:
            with self._lock:
                now = self.clock.now()
                until, which = self._blocked_until(now, num_bytes, "a wait for")
            if until <= now:
                return
            self.wait_until(until, which)

    def wait_until(self, until: float, which: str) -> None:
        """Sleep until ``until``, or raise LimitReached under --no-wait.

        While admitted downloads are still in flight, their reservations may yet shrink (an
        estimate before its Content-Length, a body cut short), so look again when one of
        them settles or shrinks: an event, not a time, so no clock moves for it.
        """
        with self._lock:
            in_flight = self._in_flight > 0
            if in_flight:
                self._settled.wait(IN_FLIGHT_RECHECK)
        if in_flight:
            if self.cancel.is_set():
                raise WaitCancelled
            return
        limit = self.windows[which].limit
        when = datetime.fromtimestamp(until).astimezone()
        if not self.wait:
            raise LimitReached(
                f"the {which} download limit of {format_size(limit)} is reached; the budget "
                f"frees up at {when:%Y-%m-%d %H:%M:%S %Z}: run the same command again then",
                until=when,
            )
        with self._lock:
            if self._announced != until:
                self._announced = until
                self.on_wait(
                    f"{which} limit of {format_size(limit)} reached; waiting until "
                    f"{when:%H:%M:%S} (Ctrl-C stops; the same command resumes)"
                )
        if self.clock.wait(self.cancel, max(0.0, until - self.clock.now()) + 0.001):
            raise WaitCancelled

    def settle(self, ticket: Ticket, sent: int) -> None:
        """Replace a download's reservation by the bytes its host sent, counted as sent now
        (bytes still arriving long after their admission count from when they arrived)."""
        with self._lock:
            self._in_flight -= 1
            now = self.clock.now()
            self.sent += sent
            lease = self._lease
            if lease is not None and all(part.lease_id == lease.id for part in ticket.parts):
                self._release(ticket, ticket.bytes)
                self._add_sent(now, sent)
            else:  # on disk before a closed lease gives its share back: never undercounted
                self._add_sent(now, sent)
                self._release(ticket, ticket.bytes)
            self._settled.notify_all()

    def _add_sent(self, now: float, sent: int) -> None:
        if sent:
            self._reserve(now, sent)
            self._count(now, sent)

    def _release(self, ticket: Ticket, num_bytes: int) -> None:
        """Give back ``num_bytes`` of a ticket's reservation, its newest first."""
        while num_bytes > 0 and ticket.parts:
            part = ticket.parts[-1]
            taken = min(num_bytes, part.bytes)
            for window in self.windows.values():
                window.reserved -= taken
            if self._lease is not None and self._lease.id == part.lease_id:
                self._lease.used -= taken
            else:  # its lease was closed counting it
                self.store.shrink_lease(part.lease_id, taken)
            part.bytes -= taken
            num_bytes -= taken
            if not part.bytes:
                ticket.parts.pop()

    def _part(self, num_bytes: int) -> _Part:
        """Reserve ``num_bytes`` in the windows and on disk (a lease) before they are sent."""
        for window in self.windows.values():
            window.reserved += num_bytes
        return _Part(num_bytes, self._reserve(self.clock.now(), num_bytes))

    def _count(self, now: float, num_bytes: int) -> None:
        """Add sent bytes to the windows: to the newest bucket while it is young, so
        that memory does not grow with the number of photos."""
        bucket = self._bucket
        if bucket is None or now - self._bucket_opened >= BUCKET_SECONDS:
            self._bucket, self._bucket_opened = _Bucket(now, num_bytes), now
            self._add_bucket(self._bucket)
            return
        bucket.at = max(bucket.at, now)  # later is cautious: the bytes count longer
        bucket.bytes += num_bytes
        for window in self.windows.values():
            window.total += num_bytes

    def _add_bucket(self, bucket: _Bucket) -> None:
        for window in self.windows.values():
            window.add(bucket)

    def _reserve(self, now: float, num_bytes: int) -> int:
        lease = self._lease
        if lease is None or lease.used + num_bytes > lease.capacity or now - lease.opened_at > LEASE_SECONDS:
            self._close_lease()
            capacity = max(num_bytes, self.lease_size)
            lease_id = self.store.open_lease(now + LEASE_SECONDS, capacity)
            lease = self._lease = _Lease(lease_id, capacity, 0, now, now)
        lease.used += num_bytes
        lease.last_at = now
        return lease.id

    def _close_lease(self) -> None:
        if self._lease is not None:
            self.store.close_lease(self._lease.id, self._lease.last_at, self._lease.used)
            self._lease = None

    def close(self) -> None:
        """Write the bytes really read to the ledger (end of run, Ctrl-C, limit)."""
        with self._lock:
            self._close_lease()


class PhotoAdmission:
    """The bytes to reserve before a photo's request, and when to send it: the admission
    policy over a run's budget and the sizes of the photos seen."""

    def __init__(self, budget: ByteBudget, sizes: PhotoSizes) -> None:
        self.budget = budget
        self.sizes = sizes

    def admit(self, size: str, rest: int | None, ask_length: Callable[[], int | None]) -> Ticket:
        """Reserve what is left of a photo whose length is known (``rest``: a cut body),
        else a high percentile of the sizes of its size's photos; near a limit (within
        HEAD_WITHIN_PHOTOS of them) its length as a HEAD request (``ask_length``) announces
        it. Far from any limit, in one look.

        Waits for room (LimitReached under --no-wait, WaitCancelled at Ctrl-C); raises
        LimitTooSmall at once, never waiting, when the photo cannot fit a whole limit.
        """
        budget = self.budget
        if rest is not None:
            return budget.admit(rest, f"the rest of a {size} photo is")
        estimate = min(self.sizes.estimate(size), budget.largest)
        margin = HEAD_WITHIN_PHOTOS * estimate
        ticket = budget.admit_with_margin(estimate, margin)
        return ticket or budget.admit(self._judge(size, estimate, margin, ask_length), f"a {size} photo is")

    def _judge(self, size: str, estimate: int, margin: int, ask_length: Callable[[], int | None]) -> int:
        """The bytes to reserve for a photo near a limit: its HEAD's length at once when its
        size's estimate is more than a whole limit; else waiting (unless --no-wait) until a
        few photos fit, as the window frees, then the HEAD's length when the room is still
        tight."""
        budget = self.budget
        smallest = self.sizes.smallest(size)
        if smallest > budget.largest:
            budget.check_fits(smallest, f"every {size} photo downloaded so far was at least")
        if self.sizes.estimate(size) > budget.largest:
            # Capped at a whole limit the estimate is a guess, whatever the room: the photo's
            # own length says at once whether a wait can make room, and waits for no more.
            length = ask_length()
            if length:
                budget.check_fits(length, f"a {size} photo is")
                return length
            return estimate
        if budget.wait and margin <= budget.largest:
            budget.wait_for_room(margin)  # as the window frees, not in a burst later
        room = budget.room()
        # HEAD only when some photo could still fit: with no room for even the smallest
        # photo seen, the admission that follows waits or stops without asking the host.
        if room < margin and room >= smallest:
            length = ask_length()
            if length:
                return length
        return estimate


def budget_hours(total: int, hourly: int, daily: int) -> float:
    """Hours the byte limits alone need for ``total`` bytes: whole days at the daily limit,
    then the rest at the hourly one (for --dry-run's estimate)."""
    days, rest = divmod(total, daily)
    return days * 24 + rest / hourly
