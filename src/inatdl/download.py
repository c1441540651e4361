"""Download one photo: admitted against the byte budget before its request, streamed,
checked, renamed; a body cut short is resumed with Range, in the same run or the next.

What the ledger counts for a request is what its host may have sent of the body: the bytes
read when the body ended cleanly (whole, or cut short by the host closing), and the whole
announced length when it was left unread or broken off (a reset, a timeout, Ctrl-C), since
the host may have sent it all the same. Counting more than was sent is safe; less is not.

Each attempt at a photo is an Attempt; what an answer calls for is response_action's table;
the bytes to reserve before a request are the budget module's to judge (PhotoAdmission),
and the .part file's life is parts.py's.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import requests
import urllib3
from requests.utils import requote_uri

from inatdl.budget import ByteBudget, PhotoAdmission, PhotoSizes, Ticket, WaitCancelled
from inatdl.client import Timeout, backoff_delay, describe_failure, is_retryable, parse_retry_after
from inatdl.clock import Clock
from inatdl.constants import (
    CHUNK_SIZE,
    CONNECT_TIMEOUT,
    GONE_STATUSES,
    MAX_PHOTO_BYTES,
    PART_INFO_AFTER,
    PHOTO_ATTEMPTS,
    PHOTO_DEADLINE,
    READ_TIMEOUT,
)
from inatdl.files import disk_error
from inatdl.parts import PART_SUFFIX, Partial, Spool
from inatdl.state import DONE, FAILED, GONE, PENDING, Outcome, PhotoJob

IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")


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


# What an answer to a photo request calls for (response_action)
READ_BODY, RETRY, FAIL, RECORD_GONE = "read the body", "retry", "fail", "record as gone"


@dataclass(frozen=True)
class Action:
    """What to do with a photo host's answer, before its body is read."""

    verb: str  # READ_BODY, RETRY the photo, FAIL it, or RECORD_GONE
    restart: bool = False  # first drop what the .part holds: the body starts at byte 0
    problem: str = ""  # why, for RETRY, FAIL and RECORD_GONE
    retry_after: float | None = None  # the host's Retry-After, in seconds, for RETRY


_READ_WHOLE = Action(READ_BODY, restart=True)  # the whole photo (again: it changed, or no ranges)
_READ_REST = Action(READ_BODY)  # the bytes after those the .part holds


def response_action(status: int, headers: Mapping[str, str], partial: Partial) -> Action:
    """What an answer calls for, from its status, its headers and what the .part holds
    (its offset and length): a table, as pooch's download_action, applied in one place."""
    if status in GONE_STATUSES:
        return Action(RECORD_GONE, problem=f"HTTP {status}")
    if is_retryable(status):
        retry_after = parse_retry_after(headers.get("Retry-After"))
        return Action(RETRY, problem=f"HTTP {status}", retry_after=retry_after)
    if status == 200:
        read = _READ_WHOLE
    elif status == 206:
        if not partial.continued_by(headers.get("Content-Range", "")):
            return Action(RETRY, restart=True, problem="the host sent another part than the one asked for")
        read = _READ_REST
    elif status == 416:  # the part kept no longer matches: start again
        return Action(RETRY, restart=True, problem="HTTP 416 for the rest of a cut body")
    else:
        return Action(FAIL, problem=f"HTTP {status}")
    content_type = headers.get("Content-Type", "").lower()
    if content_type.startswith("text/") or "json" in content_type:
        problem = f"got {content_type.split(';')[0]} instead of an image"
        return Action(RETRY, restart=read.restart, problem=problem)
    return read


@dataclass(slots=True)
class Attempt:
    """One attempt at one photo: what it asks for, where its bytes go, what it reserved."""

    job: PhotoJob
    final: str  # the photo's file, renamed from its .part once whole
    partial: Partial  # the .part, kept across attempts (and runs)
    number: int  # 1 for the first attempt
    ticket: Ticket  # the bytes reserved in the budget for this request
    body: _Body  # the answer's body as it is read

    @property
    def cap(self) -> int:
        """The most bytes a photo of its size can be."""
        return MAX_PHOTO_BYTES[self.job.size]

    def outcome(self, status: str, error: str = "") -> Outcome:
        return Outcome(self.job, status, error=error, attempts=self.number)


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
        self.admission = PhotoAdmission(budget, self.sizes)
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

        Raises only what must stop the whole run: a full disk, LimitReached, LimitTooSmall.
        """
        # Plain strings, not Path objects: pathlib interns every name it parses, which
        # would keep two strings a photo alive for the whole run.
        final = os.path.join(self.data_dir, job.path)
        if job.may_be_on_disk and (there := self.already_there(job)) is not None:
            return there
        partial = Partial(final + PART_SUFFIX, job.url)
        if job.path in self.kept_parts:
            self.kept_parts.discard(job.path)
            partial.take_up()
        try:
            outcome = self._attempts(job, final, partial)
        finally:
            if partial.offset and not partial.recorded:  # kept (see _receive): for the next run
                partial.keep()
        if partial.recorded and outcome.status == GONE:  # no run will ask for it again
            partial.discard()
        if outcome.status == DONE:
            self.sizes.add(job.size, outcome.bytes)
        return outcome

    def _attempts(self, job: PhotoJob, final: str, partial: Partial) -> Outcome:
        number, problem = 0, ""
        while number < self.attempts:
            if self.stop.is_set():
                return Outcome(job, PENDING, attempts=number)
            number += 1
            try:
                return self._attempt(job, final, number, partial)
            except (_Dropped, WaitCancelled):
                return Outcome(job, PENDING, attempts=number)
            except _Refused as refused:
                return Outcome(job, FAILED, error=str(refused), attempts=number)
            except _Retry as failure:
                problem = failure.problem
                if number < self.attempts and self.clock.wait(
                    self.stop, backoff_delay(number, failure.retry_after)
                ):
                    return Outcome(job, PENDING, attempts=number)
        return Outcome(job, FAILED, error=problem, attempts=number)

    def _attempt(self, job: PhotoJob, final: str, number: int, partial: Partial) -> Outcome:
        rest = None if partial.total is None else partial.total - partial.offset
        ticket = self.admission.admit(
            job.size, rest, lambda: head_length(self.session, job.url, self.timeout)
        )
        body = _Body(length=0)  # nothing sent until an answer comes
        try:
            return self._ask(Attempt(job, final, partial, number, ticket, body))
        finally:
            sent = body.sent(ticket.bytes)
            if sent > ticket.bytes:  # an error page or redirects larger than the room reserved
                self.budget.resize(ticket, sent, f"photo {job.photo_id}")
            self.budget.settle(ticket, sent)

    def _ask(self, attempt: Attempt) -> Outcome:
        job, partial, body = attempt.job, attempt.partial, attempt.body
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
            return attempt.outcome(FAILED, f"unusable URL or redirect: {exc}")
        except requests.RequestException as exc:
            raise _Retry(describe_failure(exc)) from None
        with response:
            body.length = content_length(response)
            action = response_action(response.status_code, response.headers, partial)
            if action.restart:
                partial.restart()
            if action.verb != READ_BODY:
                if action.verb == RETRY:
                    raise _Retry(action.problem, action.retry_after)
                return attempt.outcome(GONE if action.verb == RECORD_GONE else FAILED, action.problem)
            if body.length is not None and partial.offset + body.length > attempt.cap:
                return attempt.outcome(
                    FAILED, f"announced {body.length} bytes, more than a {job.size} photo can be"
                )
            if body.length == 0:
                raise _Retry("empty body")
            if body.length is not None:
                if body.length > self.budget.largest:  # left unread: no wait would make it fit
                    self.budget.check_fits(body.length, f"a {job.size} photo is")
                self.budget.resize(attempt.ticket, body.length, f"photo {job.photo_id}")
                partial.total = partial.offset + body.length
            else:
                partial.total = None
            partial.validator = _validator(response)
            received = self._receive(attempt, response)
        return Outcome(job, DONE, received, attempts=attempt.number)

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

    def _receive(self, attempt: Attempt, response: requests.Response) -> int:
        """Stream the body onto the photo's .part file; rename it when whole.

        A body of unknown length reserves more, step by step, before reading past what it
        has. A body cut short keeps its .part for a Range request when its host named it
        (ETag or Last-Modified); anything else removes it.
        """
        partial, ticket, body = attempt.partial, attempt.ticket, attempt.body
        keep = False
        started = time.monotonic()
        deadline, record_at = started + PHOTO_DEADLINE, started + self.part_info_after
        head = tail = b""
        try:
            with Spool(partial) as spool:
                if partial.offset:
                    head = spool.head()
                while True:
                    room = ticket.bytes - body.received
                    if room <= 0:
                        if body.length is not None:
                            break
                        self._grow(attempt)  # this body's bytes included
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
            os.replace(partial.path, attempt.final)
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
            raise disk_error(exc, Path(attempt.final)) from None
        finally:
            if partial.offset and not keep:
                partial.discard()

    def _grow(self, attempt: Attempt) -> None:
        """Reserve more for a body of unknown length that has used its reservation: its
        host sends it whether or not it fits, so past the limit it is read and counted."""
        ticket, received, cap = attempt.ticket, attempt.partial.offset, attempt.cap
        more = min(ticket.bytes, cap - received)
        if more <= 0:
            raise _Refused(f"the body is larger than {cap} bytes, more than a photo can be")
        what = f"photo {attempt.job.photo_id} (of unknown length)"
        self.budget.resize(ticket, ticket.bytes + more, what)


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


def content_length(response: requests.Response) -> int | None:
    try:
        value = int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None
    return value if value >= 0 else None
