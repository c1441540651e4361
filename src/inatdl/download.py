"""Download one photo: admitted against the byte budget, streamed, checked, renamed."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import BinaryIO

import requests
import urllib3

from inatdl.budget import ByteBudget, Ticket, TooLarge, WaitCancelled
from inatdl.client import Timeout, backoff_delay, describe_failure, is_retryable, retry_after_seconds
from inatdl.clock import Clock
from inatdl.constants import (
    CHUNK_SIZE,
    CONNECT_TIMEOUT,
    GONE_STATUSES,
    MAX_PHOTO_BYTES,
    PHOTO_ATTEMPTS,
    PHOTO_DEADLINE,
    READ_TIMEOUT,
)
from inatdl.files import disk_error
from inatdl.state import DONE, FAILED, GONE, PENDING, Outcome, PhotoJob

UNKNOWN_LENGTH_STEP = 1_000_000  # bytes reserved at a time for a body of unknown length
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")
PART_SUFFIX = ".part"


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


class _NoRoom(Exception):
    """The announced size does not fit the byte budget now: the body is left unread."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


class _Refused(Exception):
    """This photo cannot be had as it is served: no retry would help."""


class _Dropped(Exception):
    """The run is stopping: an unfinished body is thrown away."""


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
    ) -> None:
        self.session = session
        self.data_dir = data_dir
        self.budget = budget
        self.clock = clock
        self.stop = stop
        self.timeout = timeout
        self.attempts = attempts
        self._sizes_seen = [0, 0]  # photos, bytes: for the estimate before a request

    def typical_bytes(self) -> int:
        photos, total = self._sizes_seen
        return total // photos if photos else 1

    def download(self, job: PhotoJob) -> Outcome:
        """Fetch one photo, retrying what may pass; the outcome says what happened.

        Raises only what must stop the whole run: a full disk, or LimitReached.
        """
        # Plain strings, not Path objects: pathlib interns every name it parses, which
        # would keep two strings a photo alive for the whole run.
        final = os.path.join(self.data_dir, job.path)
        if os.path.isfile(final):  # a rename that the previous run did not get to record
            return Outcome(job, DONE, os.path.getsize(final), already_there=True)
        attempt, problem, needed = 0, "", self.typical_bytes()
        while attempt < self.attempts:
            if self.stop.is_set():
                return Outcome(job, PENDING, attempts=attempt)
            try:
                self.budget.wait_for_room(needed)
                attempt += 1
                return self._attempt(job, final, attempt)
            except _NoRoom as no_room:
                attempt -= 1  # asking again once there is room for it is not a retry
                needed = max(needed, no_room.needed)
                continue
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

    def _attempt(self, job: PhotoJob, final: str, attempt: int) -> Outcome:
        cap = MAX_PHOTO_BYTES[job.size]
        try:
            # identity: the bytes counted against the budget and Content-Length are the file's
            response = self.session.get(
                job.url, stream=True, timeout=self.timeout, headers={"Accept-Encoding": "identity"}
            )
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
            status = response.status_code
            if status in GONE_STATUSES:
                return Outcome(job, GONE, error=f"HTTP {status}", attempts=attempt)
            if is_retryable(status):
                raise _Retry(f"HTTP {status}", retry_after_seconds(response))
            if status != 200:
                return Outcome(job, FAILED, error=f"HTTP {status}", attempts=attempt)
            content_type = response.headers.get("Content-Type", "").lower()
            if content_type.startswith("text/") or "json" in content_type:
                raise _Retry(f"got {content_type.split(';')[0]} instead of an image")
            length = content_length(response)
            if length is not None and length > cap:
                return Outcome(
                    job,
                    FAILED,
                    attempts=attempt,
                    error=f"announced {length} bytes, more than a {job.size} photo can be",
                )
            if length == 0:
                raise _Retry("empty body")
            # Without a Content-Length, reserve an estimate first and more as the body grows.
            largest = self.budget.largest
            first_step = min(cap, UNKNOWN_LENGTH_STEP, largest, max(2 * CHUNK_SIZE, largest // 16))
            allowed = first_step if length is None else length
            try:
                admitted = self.budget.try_admit(allowed)
            except TooLarge as too_large:
                return Outcome(job, FAILED, error=str(too_large), attempts=attempt)
            if not isinstance(admitted, Ticket):
                raise _NoRoom(allowed)
            received = self._receive(response, final, admitted, length, cap)
        self._sizes_seen[0] += 1  # racy under threads, but only an estimate
        self._sizes_seen[1] += received
        return Outcome(job, DONE, received, attempts=attempt)

    def _receive(
        self, response: requests.Response, final: str, ticket: Ticket, length: int | None, cap: int
    ) -> int:
        """Stream the body to a temporary file beside ``final``; rename it when whole.

        Never reads a byte that is not reserved in the budget: a body of unknown length
        reserves more, step by step, before reading past what it has.
        """
        temporary = final + PART_SUFFIX
        received = 0
        complete = False
        deadline = time.monotonic() + PHOTO_DEADLINE
        head = tail = b""
        try:
            with _open_creating_folder(temporary) as handle:
                while True:
                    room = ticket.bytes - received
                    if room <= 0:
                        if length is not None:
                            break
                        self._grow(ticket, received, cap)
                        room = ticket.bytes - received
                    chunk = response.raw.read(min(CHUNK_SIZE, room), decode_content=False)
                    if not chunk:
                        break
                    if self.stop.is_set():
                        raise _Dropped
                    if received == 0:
                        head = chunk[:16]
                        if not looks_like_image(head):
                            raise _Retry("the body is not an image")
                    if time.monotonic() > deadline:
                        raise _Retry(f"the body took more than {PHOTO_DEADLINE:.0f} s")
                    received += len(chunk)
                    handle.write(chunk)
                    tail = (tail + chunk)[-16:]
            if received == 0:
                raise _Retry("empty body")
            if length is not None and received != length:
                raise _Retry(f"body cut short: {received} of {length} bytes")
            if length is None and not is_whole_image(head, tail, received):
                raise _Retry("body cut short (no end of image)")
            os.replace(temporary, final)
            complete = True
            return received
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise _Retry(describe_failure(exc)) from None
        except OSError as exc:
            raise disk_error(exc, Path(final)) from None
        finally:
            self.budget.settle(ticket, received)
            if not complete:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)

    def _grow(self, ticket: Ticket, received: int, cap: int) -> None:
        """Reserve more for a body of unknown length that has used its reservation; when
        the budget has no room, the attempt waits for it rather than counting as failed."""
        more = min(ticket.bytes, cap - received)
        if more <= 0:
            raise _Refused(f"the body is larger than {cap} bytes, more than a photo can be")
        if self.budget.try_extend(ticket, more) is not None:
            raise _NoRoom(received + more)


def _open_creating_folder(path: str) -> BinaryIO:
    """Open ``path`` for writing; its folder is made only when missing (not a call a photo)."""
    try:
        return open(path, "wb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return open(path, "wb")  # noqa: SIM115


def content_length(response: requests.Response) -> int | None:
    try:
        value = int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None
    return value if value >= 0 else None
