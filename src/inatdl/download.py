"""Download one photo: admitted against the byte budget before its request, streamed,
checked, renamed; a body cut short is resumed with Range, in the same run or the next.

What the ledger counts for a request is what its host may have sent of the body: the bytes
read when the body ended cleanly (whole, or cut short by the host closing), and the whole
announced length when it was left unread or broken off (a reset, a timeout, Ctrl-C), since
the host may have sent it all the same. Counting more than was sent is safe; less is not.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import requests
import urllib3
from requests.utils import requote_uri

from inatdl.budget import ByteBudget, Ticket, TooLarge, WaitCancelled
from inatdl.client import Timeout, backoff_delay, describe_failure, is_retryable, retry_after_seconds
from inatdl.clock import Clock
from inatdl.constants import (
    CAUTIOUS_PHOTO_BYTES,
    CHUNK_SIZE,
    CONNECT_TIMEOUT,
    GONE_STATUSES,
    HEAD_WITHIN_PHOTOS,
    MAX_PHOTO_BYTES,
    PART_INFO_AFTER,
    PHOTO_ATTEMPTS,
    PHOTO_DEADLINE,
    READ_TIMEOUT,
    SIZE_PERCENTILE,
    SPOOL_BYTES,
)
from inatdl.files import disk_error
from inatdl.state import DONE, FAILED, GONE, PENDING, Outcome, PhotoJob

SIZE_BUCKET_RATIO = 1.0905  # photo sizes are counted in buckets about 9 % wide
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")
PART_SUFFIX = ".part"
# Beside a .part, what it belongs to (URL, ETag or Last-Modified, whole length), so that the
# next run resumes it with If-Range. Written when a run leaves a body unfinished (a cut, a
# stop, Ctrl-C) and, against a SIGKILL or a crash, once a body has been arriving for
# PART_INFO_AFTER: not for every photo, as creating and removing a file costs more CPU
# than the rest of a fast photo's path. A .part without it is removed at the next start.
PART_INFO_SUFFIX = PART_SUFFIX + ".info"


def is_whole_image(head: bytes, tail: bytes, size: int) -> bool:
    """True when a body of unknown length ends as its own format ends: JPEG with FFD9,
    PNG with its IEND chunk, GIF with ';', WebP at the length its RIFF header gives."""
    if head.startswith(b"\xff\xd8\xff"):
        return tail.endswith(b"\xff\xd9")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return tail.endswith(b"IEND\xaeB`\x82")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return tail.endswith(b";")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return int.from_bytes(head[4:8], "little") + 8 == size
    return False


def looks_like_image(head: bytes) -> bool:
    """True when the first bytes of a body are those of a JPEG, PNG, GIF or WebP file."""
    return head.startswith(IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


class _Retry(Exception):
    """This attempt failed in a way that another attempt may not."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


class _Refused(Exception):
    """This photo cannot be had as it is served: no retry would help."""


class _Dropped(Exception):
    """The run is stopping: an unfinished body is thrown away."""


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


@dataclass
class _Partial:
    """A body cut short: the bytes kept in the .part file, and how to ask for the rest."""

    path: str
    url: str
    offset: int = 0
    total: int | None = None  # the photo's whole length, as its host told it
    validator: str | None = None  # its ETag or Last-Modified, for If-Range
    recorded: bool = False  # its .part.info names this body: another run may resume it

    @property
    def info_path(self) -> str:
        return self.path + PART_INFO_SUFFIX[len(PART_SUFFIX) :]

    def restart(self) -> None:
        """Start the body again from byte 0; its .part.info no longer names it."""
        self.offset, self.total, self.validator = 0, None, None
        if self.recorded:
            self.recorded = False
            with contextlib.suppress(OSError):
                os.unlink(self.info_path)

    def record(self) -> None:
        """Write the .part.info: a temporary name, then a rename; in one write (json.dump
        to a file writes piece by piece)."""
        info = json.dumps({"url": self.url, "validator": self.validator, "total": self.total})
        temporary = self.info_path + ".tmp"
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            os.write(handle, info.encode())
        finally:
            os.close(handle)
        os.replace(temporary, self.info_path)
        self.recorded = True

    def take_up(self) -> None:
        """Go on from a .part an earlier run kept, when its .part.info says it is this
        photo's, at this URL, and short of its length; else remove both and start afresh."""
        try:
            with open(self.info_path, encoding="utf-8") as handle:
                info = json.load(handle)
            offset = os.path.getsize(self.path)
        except (OSError, ValueError):
            self.discard()
            return
        total, validator = info.get("total"), info.get("validator")
        usable = isinstance(validator, str) and info.get("url") == self.url
        if not usable or not offset or (isinstance(total, int) and offset >= total):
            self.discard()
            return
        self.offset, self.validator, self.recorded = offset, validator, True
        self.total = total if isinstance(total, int) else None

    def discard(self) -> None:
        """Remove the .part and its .part.info: what they hold is of no further use."""
        self.recorded = True  # whether or not this run wrote it: an earlier run may have
        self.restart()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


@dataclass
class _Body:
    """One answer's body as it is read: what the ledger is to count for it."""

    length: int | None  # announced (Content-Length), None when unknown
    received: int = 0
    ended_cleanly: bool = False  # whole, or cut short by the host closing the connection
    redirects: int = 0  # bytes of the bodies of the redirects followed to it (read whole)

    def sent(self, reserved: int) -> int:
        """The most the host may have sent: what was read when the body ended cleanly, its
        announced length otherwise (or, unknown, the room reserved for it)."""
        if self.ended_cleanly:
            return self.redirects + self.received
        return self.redirects + max(self.received, reserved if self.length is None else self.length)


class Downloader:
    """Downloads photo jobs into the data dir; one instance shared by all workers."""

    def __init__(
        self,
        session: requests.Session,
        data_dir: Path,
        budget: ByteBudget,
        clock: Clock,
        stop: threading.Event,
        timeout: Timeout = (CONNECT_TIMEOUT, READ_TIMEOUT),
        attempts: int = PHOTO_ATTEMPTS,
        sizes: PhotoSizes | None = None,
        kept_parts: set[str] | None = None,
        part_info_after: float = PART_INFO_AFTER,
    ) -> None:
        self.session = session
        self.data_dir = data_dir
        self.budget = budget
        self.clock = clock
        self.stop = stop
        self.timeout = timeout
        self.attempts = attempts
        self.sizes = sizes or PhotoSizes()
        self.kept_parts = kept_parts or set()  # job paths whose .part an earlier run kept
        self.part_info_after = part_info_after  # seconds a body arrives before its .part.info

    def already_there(self, job: PhotoJob) -> Outcome | None:
        """Done, when the photo's file is complete on disk: a rename that the run which made it
        (killed before its batch of records was committed) did not get to record."""
        final = os.path.join(self.data_dir, job.path)
        if os.path.isfile(final):
            return Outcome(job, DONE, os.path.getsize(final), already_there=True)
        return None

    def download(self, job: PhotoJob) -> Outcome:
        """Fetch one photo, retrying what may pass; the outcome says what happened.

        Raises only what must stop the whole run: a full disk, or LimitReached.
        """
        # Plain strings, not Path objects: pathlib interns every name it parses, which
        # would keep two strings a photo alive for the whole run.
        final = os.path.join(self.data_dir, job.path)
        if job.may_be_on_disk and (there := self.already_there(job)) is not None:
            return there
        partial = _Partial(final + PART_SUFFIX, job.url)
        if job.path in self.kept_parts:
            self.kept_parts.discard(job.path)
            partial.take_up()
        try:
            outcome = self._attempts(job, final, partial)
        finally:
            if partial.offset and not partial.recorded:  # kept (see _receive): for the next run
                try:
                    partial.record()
                except OSError:
                    partial.discard()
        if partial.recorded and outcome.status == GONE:  # no run will ask for it again
            partial.discard()
        if outcome.status == DONE:
            self.sizes.add(job.size, outcome.bytes)
        return outcome

    def _attempts(self, job: PhotoJob, final: str, partial: _Partial) -> Outcome:
        attempt, problem = 0, ""
        while attempt < self.attempts:
            if self.stop.is_set():
                return Outcome(job, PENDING, attempts=attempt)
            attempt += 1
            try:
                return self._attempt(job, final, attempt, partial)
            except (_Dropped, WaitCancelled):
                return Outcome(job, PENDING, attempts=attempt)
            except (_Refused, TooLarge) as refused:
                return Outcome(job, FAILED, error=str(refused), attempts=attempt)
            except _Retry as failure:
                problem = failure.problem
                if attempt < self.attempts and self.clock.wait(
                    self.stop, backoff_delay(attempt, failure.retry_after)
                ):
                    return Outcome(job, PENDING, attempts=attempt)
        return Outcome(job, FAILED, error=problem, attempts=attempt)

    def _admit(self, job: PhotoJob, partial: _Partial) -> Ticket:
        """Reserve, before asking, what is left of a known length, else a high percentile of
        this size; near a limit (within a few photos of it) the size is asked with HEAD."""
        if partial.total is not None:
            return self.budget.admit(partial.total - partial.offset)
        estimate = min(self.sizes.estimate(job.size), self.budget.largest)
        margin = HEAD_WITHIN_PHOTOS * estimate
        ticket = self.budget.admit_with_margin(estimate, margin)  # far from any limit: at once
        return ticket or self.budget.admit(self._judge(job, estimate, margin))

    def _judge(self, job: PhotoJob, estimate: int, margin: int) -> int:
        """The bytes to reserve near a limit: waiting (unless --no-wait) until a few photos
        fit, as the window frees; then the HEAD's length when the room is still tight."""
        if self.budget.wait and margin <= self.budget.largest:
            self.budget.wait_for_room(margin)  # as the window frees, not in a burst later
        room = self.budget.room()
        # HEAD only when some photo could still fit: with no room for even the smallest
        # photo seen, the admission that follows waits or stops without asking the host.
        if room < margin and room >= self.sizes.smallest(job.size):
            length = head_length(self.session, job.url, self.timeout)
            if length:
                return length
        return estimate

    def _attempt(self, job: PhotoJob, final: str, attempt: int, partial: _Partial) -> Outcome:
        ticket = self._admit(job, partial)
        body = _Body(length=0)  # nothing sent until an answer comes
        try:
            return self._ask(job, final, attempt, partial, ticket, body)
        finally:
            sent = body.sent(ticket.bytes)
            if sent > ticket.bytes:  # an error page or redirects larger than the room reserved
                self.budget.resize(ticket, sent, f"photo {job.photo_id}")
            self.budget.settle(ticket, sent)

    def _ask(
        self, job: PhotoJob, final: str, attempt: int, partial: _Partial, ticket: Ticket, body: _Body
    ) -> Outcome:
        cap = MAX_PHOTO_BYTES[job.size]
        # identity: the bytes counted against the budget and Content-Length are the file's
        headers = {"Accept-Encoding": "identity"}
        if partial.offset and partial.validator:
            headers["Range"] = f"bytes={partial.offset}-"
            headers["If-Range"] = partial.validator
        try:
            response = self._get(job.url, headers, body)
        except (
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.TooManyRedirects,
        ) as exc:
            return Outcome(job, FAILED, error=f"unusable URL or redirect: {exc}", attempts=attempt)
        except requests.RequestException as exc:
            raise _Retry(describe_failure(exc)) from None
        with response:
            body.length = content_length(response)
            status = response.status_code
            if status in GONE_STATUSES:
                return Outcome(job, GONE, error=f"HTTP {status}", attempts=attempt)
            if is_retryable(status):
                raise _Retry(f"HTTP {status}", retry_after_seconds(response))
            if status == 206 and not _continues(response, partial):
                partial.restart()
                raise _Retry("the host sent another part than the one asked for")
            if status == 200:
                partial.restart()  # the whole photo again (it changed, or ranges are not served)
            elif status != 206:
                if status == 416:  # the part kept no longer matches: start again
                    partial.restart()
                    raise _Retry("HTTP 416 for the rest of a cut body")
                return Outcome(job, FAILED, error=f"HTTP {status}", attempts=attempt)
            content_type = response.headers.get("Content-Type", "").lower()
            if content_type.startswith("text/") or "json" in content_type:
                raise _Retry(f"got {content_type.split(';')[0]} instead of an image")
            if body.length is not None and partial.offset + body.length > cap:
                return Outcome(
                    job,
                    FAILED,
                    attempts=attempt,
                    error=f"announced {body.length} bytes, more than a {job.size} photo can be",
                )
            if body.length == 0:
                raise _Retry("empty body")
            if body.length is not None:
                self.budget.resize(ticket, body.length, f"photo {job.photo_id}")
                partial.total = partial.offset + body.length
            else:
                partial.total = None
            partial.validator = _validator(response)
            received = self._receive(response, final, partial, ticket, body, cap, job)
        return Outcome(job, DONE, received, attempts=attempt)

    def _get(self, url: str, headers: dict[str, str], body: _Body) -> requests.Response:
        """GET ``url`` as ``session.get(url, stream=True)`` does, by the session's adapter.

        requests prepares each call for cookies, auth, hooks and merged settings, which
        photo hosts do not use: about a quarter of its CPU a photo. Redirects are followed
        here as requests follows them, the bytes of their bodies added to ``body``.
        """
        session = self.session
        for _ in range(session.max_redirects + 1):
            request = requests.PreparedRequest()
            request.prepare(method="GET", url=url, headers={**session.headers, **headers})
            settings = session.merge_environment_settings(url, {}, True, None, None)
            response = session.get_adapter(url).send(
                request,
                stream=True,
                timeout=self.timeout,
                verify=settings["verify"],
                cert=settings["cert"],
                proxies=settings["proxies"],
            )
            if not response.is_redirect or not response.headers["location"]:
                return response  # an empty Location too, as requests does: "HTTP 302"
            with response:
                body.redirects += _redirect_bytes(response)
            try:
                url = urljoin(response.url, requote_uri(session.get_redirect_target(response) or ""))
            except ValueError as exc:  # not a URL (bad IPv6 brackets, bytes that are not UTF-8)
                raise requests.exceptions.InvalidURL(f"a redirect to {exc}") from None
        raise requests.exceptions.TooManyRedirects(f"more than {session.max_redirects} redirects")

    def _receive(
        self,
        response: requests.Response,
        final: str,
        partial: _Partial,
        ticket: Ticket,
        body: _Body,
        cap: int,
        job: PhotoJob,
    ) -> int:
        """Stream the body onto the .part file beside ``final``; rename it when whole.

        A body of unknown length reserves more, step by step, before reading past what it
        has. A body cut short keeps its .part for a Range request when its host named it
        (ETag or Last-Modified); anything else removes it.
        """
        keep = False
        started = time.monotonic()
        deadline, record_at = started + PHOTO_DEADLINE, started + self.part_info_after
        head = tail = b""
        try:
            with _Spool(partial) as spool:
                if partial.offset:
                    head = spool.head()
                while True:
                    room = ticket.bytes - body.received
                    if room <= 0:
                        if body.length is not None:
                            break
                        self._grow(ticket, partial.offset, cap, job)  # this body's bytes included
                        room = ticket.bytes - body.received
                    try:
                        chunk = response.raw.read1(min(CHUNK_SIZE, room), decode_content=False)
                    except urllib3.exceptions.ProtocolError as exc:
                        if isinstance(exc.__context__, urllib3.exceptions.IncompleteRead):
                            body.ended_cleanly = True  # the host closed: it sent what came
                        raise
                    if not chunk:
                        body.ended_cleanly = True
                        break
                    if self.stop.is_set():
                        raise _Dropped
                    if not head:
                        head = chunk[:16]
                        if not looks_like_image(head):
                            raise _Retry("the body is not an image")
                    now = time.monotonic()
                    if now > deadline:
                        raise _Retry(f"the body took more than {PHOTO_DEADLINE:.0f} s")
                    body.received += len(chunk)
                    partial.offset += len(chunk)
                    spool.add(chunk)
                    tail = (tail + chunk)[-16:]
                    if now >= record_at and not spool.streaming and partial.validator:
                        spool.stream()  # a slow body: from now on even a SIGKILL keeps its .part
                        partial.record()
            if body.received == 0:
                raise _Retry("empty body")
            if body.length is not None and body.received != body.length:
                keep = partial.validator is not None
                raise _Retry(f"body cut short: {body.received} of {body.length} bytes")
            if body.length is None and not is_whole_image(head, tail, partial.offset):
                raise _Retry("body cut short (no end of image)")
            os.replace(partial.path, final)
            total = partial.offset
            partial.restart()
            return total
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            keep = partial.validator is not None  # what came is good: ask for the rest
            raise _Retry(describe_failure(exc)) from None
        except _Dropped:
            keep = partial.validator is not None  # the next run asks for the rest
            raise
        except OSError as exc:
            raise disk_error(exc, Path(final)) from None
        finally:
            if partial.offset and not keep:
                partial.discard()

    def _grow(self, ticket: Ticket, received: int, cap: int, job: PhotoJob) -> None:
        """Reserve more for a body of unknown length that has used its reservation: its
        host sends it whether or not it fits, so past the limit it is read and counted."""
        more = min(ticket.bytes, cap - received)
        if more <= 0:
            raise _Refused(f"the body is larger than {cap} bytes, more than a photo can be")
        self.budget.resize(ticket, ticket.bytes + more, f"photo {job.photo_id} (of unknown length)")


def _redirect_bytes(response: requests.Response) -> int:
    """Read a redirect's body (which frees its connection) and say how many bytes it had;
    when the reading breaks, at least its announced length, and the redirect is followed
    all the same, as requests does."""
    read = 0
    try:
        while chunk := response.raw.read1(CHUNK_SIZE, decode_content=False):
            read += len(chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError):
        return max(read, content_length(response) or 0)
    return read


def _continues(response: requests.Response, partial: _Partial) -> bool:
    """Whether a 206 answers for the bytes after those kept."""
    content_range = response.headers.get("Content-Range", "")
    whole = "" if partial.total is None else f"/{partial.total}"  # of the body the part began
    return (
        content_range.startswith(f"bytes {partial.offset}-")
        and content_range.endswith(whole)
        and partial.offset > 0
    )


def _validator(response: requests.Response) -> str | None:
    """What If-Range may name this body by: a strong ETag, else its Last-Modified."""
    etag = response.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return response.headers.get("Last-Modified")


def head_length(session: requests.Session, url: str, timeout: Timeout) -> int | None:
    """The Content-Length a HEAD request announces (no body is sent); None if it fails."""
    try:
        response = session.head(
            url, allow_redirects=True, timeout=timeout, headers={"Accept-Encoding": "identity"}
        )
    except requests.RequestException:
        return None
    return content_length(response) if response.ok else None


class _Spool:
    """A body's bytes on their way to its .part file.

    Held in memory while the body is young and small, and written in one go when it ends
    (or is cut, or dropped): most photos arrive within a fraction of a second, and a write
    a chunk would cost them a system call each. Written as they come once the body is slow
    (see PART_INFO_AFTER) or larger than SPOOL_BYTES. A body resumed from a .part is
    appended to it.
    """

    def __init__(self, partial: _Partial) -> None:
        self.partial = partial
        self.handle: io.FileIO | None = _open_part(partial) if partial.offset else None
        self.held: list[bytes] = []
        self.held_bytes = 0
        self.streaming = False

    def head(self) -> bytes:
        """The first bytes of the .part being resumed."""
        assert self.handle is not None
        self.handle.seek(0)
        head = self.handle.read(16)
        self.handle.seek(self.partial.offset)
        return head

    def add(self, chunk: bytes) -> None:
        self.held.append(chunk)
        self.held_bytes += len(chunk)
        if self.streaming or self.held_bytes >= SPOOL_BYTES:
            self.write_out()

    def stream(self) -> None:
        """Write what is held, and every chunk from now on as it comes."""
        self.streaming = True
        self.write_out()

    def write_out(self) -> None:
        if not self.held:
            return
        if self.handle is None:
            self.handle = _create_part(self.partial.path)
        _write_all(self.handle, self.held[0] if len(self.held) == 1 else b"".join(self.held))
        self.held.clear()
        self.held_bytes = 0

    def __enter__(self) -> _Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        """Whatever came is in the .part file, for the rename or for a Range request."""
        try:
            self.write_out()
        finally:
            if self.handle is not None:
                self.handle.close()


def _open_part(partial: _Partial) -> io.FileIO:
    """Open a .part kept by an earlier attempt or run, to go on after its bytes.
    Unbuffered: what is written is in the file even if the process is killed the next
    instant, for the next run to go on after it."""
    handle = open(partial.path, "r+b", buffering=0)  # noqa: SIM115 - the caller closes it
    handle.truncate(partial.offset)
    return handle


def _create_part(path: str) -> io.FileIO:
    """Create a .part file, unbuffered; its folder is made only when missing (not a call a
    photo)."""
    try:
        return open(path, "wb", buffering=0)  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return open(path, "wb", buffering=0)  # noqa: SIM115


def _write_all(handle: io.FileIO, data: bytes) -> None:
    """An unbuffered write may take fewer bytes than given: write until all are."""
    view = memoryview(data)
    while view:
        view = view[handle.write(view) or 0 :]


def content_length(response: requests.Response) -> int | None:
    try:
        value = int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None
    return value if value >= 0 else None
