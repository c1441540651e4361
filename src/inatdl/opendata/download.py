"""Downloading the dump's tables: HEAD first (sizes, freshness), resume with ``Range``,
never a second download of a table whose ``ETag``/``Last-Modified`` has not changed.

A table is written to ``<table>.csv.gz.part`` beside a note of the validators it belongs
to, and renamed to ``<table>.csv.gz`` only when its length is the announced one; its note
(``<table>.csv.gz.json``) is written after the rename, so a crash at any moment leaves
either the previous complete file with its own note, or a part that the next sync resumes
or starts over. The tables' bytes are not photo bytes: no byte budget applies to them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import requests
import urllib3

from inatdl.client import Timeout, backoff_delay, describe_failure, is_retryable
from inatdl.clock import Clock
from inatdl.constants import CHUNK_SIZE
from inatdl.errors import OpenDataError
from inatdl.files import atomic_write_text, disk_error
from inatdl.opendata.tables import file_name

log = logging.getLogger("inatdl")

TABLE_ATTEMPTS = 6  # a cut body is resumed from where it stopped, so retries lose nothing
PART_SUFFIX = ".part"
NOTE_SUFFIX = ".json"
ELSEWHERE = "use --open-data-dir"  # how to write the tables somewhere else


@dataclass(frozen=True)
class Remote:
    """A table as the open data's host describes it (HEAD)."""

    table: str
    url: str
    length: int | None
    etag: str | None
    last_modified: str | None

    def same_as(self, note: dict[str, object] | None) -> bool:
        """Whether a saved note names this very body: the same ETag, or (without one) the
        same Last-Modified, and the same length."""
        if not note or note.get("length") != self.length:
            return False
        if self.etag:
            return note.get("etag") == self.etag
        return bool(self.last_modified) and note.get("last_modified") == self.last_modified


#: What to do when the open data's host cannot be reached, as the API's errors say it.
AGAIN = "check your connection and --open-data-url, then run the same command again"


def table_url(base_url: str, table: str) -> str:
    return f"{base_url.rstrip('/')}/{file_name(table)}"


def head_table(
    session: requests.Session, base_url: str, table: str, timeout: Timeout, clock: Clock
) -> Remote:
    """The table's length and validators; OpenDataError naming it when the host has none."""
    url = table_url(base_url, table)
    response = _request(session, "HEAD", url, {}, timeout, clock)
    if response.status_code in (403, 404, 410):
        raise OpenDataError(
            f"the open data at {base_url} has no {table} table (HTTP {response.status_code} for {url}); "
            "check --open-data-url"
        )
    if response.status_code != 200:
        raise OpenDataError(f"HEAD {url} answered HTTP {response.status_code}; {AGAIN}")
    length = response.headers.get("Content-Length")
    return Remote(
        table,
        url,
        int(length) if length and length.isdigit() else None,
        response.headers.get("ETag"),
        response.headers.get("Last-Modified"),
    )


def read_note(path: Path) -> dict[str, object] | None:
    """A saved note of validators, or None when missing or unreadable (then it is as if
    the file were not there: downloaded again, never trusted)."""
    try:
        note = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) else None


def is_current(folder: Path, remote: Remote) -> bool:
    """The table in ``folder`` is the body the host has now: nothing to download."""
    path = folder / file_name(remote.table)
    return path.exists() and remote.same_as(read_note(path.with_name(path.name + NOTE_SUFFIX)))


def part_bytes(folder: Path, remote: Remote) -> int:
    """Bytes already downloaded of this very body (a part of another body does not count)."""
    part = folder / (file_name(remote.table) + PART_SUFFIX)
    if not part.exists() or not remote.same_as(read_note(part.with_name(part.name + NOTE_SUFFIX))):
        return 0
    return part.stat().st_size


def download_table(
    session: requests.Session,
    folder: Path,
    remote: Remote,
    timeout: Timeout,
    clock: Clock,
    on_bytes: Callable[[int], None],
) -> Path:
    """Download ``remote`` into ``folder`` (resuming a part of the same body), retried with
    backoff; the complete file's path. ``on_bytes`` hears each piece written."""
    path = folder / file_name(remote.table)
    part = path.with_name(path.name + PART_SUFFIX)
    part_note = part.with_name(part.name + NOTE_SUFFIX)
    if part_bytes(folder, remote) == 0:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        _write(part_note, json.dumps(asdict(remote)))
    problem = "no attempt made"
    for attempt in range(1, TABLE_ATTEMPTS + 1):
        try:
            if _fetch_into(session, part, remote, timeout, on_bytes):
                break
            problem = "the body ended before its announced length"
        except _Retry as exc:
            problem = str(exc)
        if attempt < TABLE_ATTEMPTS:
            log.info("%s: %s; resuming (attempt %d)", remote.url, problem, attempt + 1)
            clock.sleep(backoff_delay(attempt))
    else:
        raise OpenDataError(
            f"{remote.url}: {problem} after {TABLE_ATTEMPTS} attempts; run `inatdl opendata sync` again "
            "to resume from where it stopped"
        )
    try:
        os.replace(part, path)
    except OSError as exc:
        raise disk_error(exc, path, ELSEWHERE) from exc
    _write(path.with_name(path.name + NOTE_SUFFIX), json.dumps(asdict(remote)))
    with contextlib.suppress(FileNotFoundError):
        part_note.unlink()
    return path


class _Retry(Exception):
    """An attempt failed in a way another attempt may not."""


def _fetch_into(
    session: requests.Session, part: Path, remote: Remote, timeout: Timeout, on_bytes: Callable[[int], None]
) -> bool:
    """One GET, appended to ``part`` from its current length; True when the part is whole."""
    offset = part.stat().st_size if part.exists() else 0
    if remote.length is not None and offset == remote.length:
        return True
    headers = {}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        validator = remote.etag or remote.last_modified
        if validator:
            headers["If-Range"] = validator
    response = _request(session, "GET", remote.url, headers, timeout, None, stream=True)
    with response:
        if response.status_code == 200:
            offset = 0  # the host sent the whole body: start the part over
        elif response.status_code == 416 or response.status_code != 206:
            if response.status_code in (404, 410):
                status = response.status_code
                raise OpenDataError(f"{remote.url} is gone (HTTP {status}) since its HEAD; sync again")
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
            raise _Retry(f"HTTP {response.status_code}")
        try:
            with part.open("r+b" if offset else "wb") as handle:
                handle.seek(offset)
                handle.truncate()
                # read1 and flush: what has arrived is on disk before more is asked, so a body
                # cut short, a Ctrl-C or a full disk keeps every byte received for the resume
                while chunk := response.raw.read1(CHUNK_SIZE, decode_content=False):
                    handle.write(chunk)
                    handle.flush()
                    on_bytes(len(chunk))
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:  # OSErrors too: first
            raise _Retry(describe_failure(exc)) from exc
        except OSError as exc:
            raise disk_error(exc, part, ELSEWHERE) from exc
    size = part.stat().st_size
    if remote.length is not None and size > remote.length:
        part.unlink()
        raise _Retry("the body was longer than announced")
    return remote.length is None or size == remote.length


def _request(
    session: requests.Session,
    method: str,
    url: str,
    headers: dict[str, str],
    timeout: Timeout,
    clock: Clock | None,
    stream: bool = False,
) -> requests.Response:
    """One request; retried here with backoff only when ``clock`` is given (HEAD), else the
    caller retries (a GET resumes from what it has)."""
    attempts = TABLE_ATTEMPTS if clock is not None else 1
    problem = ""
    for attempt in range(1, attempts + 1):
        try:
            response = session.request(method, url, headers=headers, timeout=timeout, stream=stream)
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
            raise OpenDataError(f"{url} is not a usable URL ({exc}); check --open-data-url") from None
        except requests.RequestException as exc:
            problem = describe_failure(exc)
        else:
            if not is_retryable(response.status_code):
                return response
            problem = f"HTTP {response.status_code}"
            response.close()
        if clock is None:
            raise _Retry(problem)
        if attempt < attempts:
            clock.sleep(backoff_delay(attempt))
    raise OpenDataError(f"{url}: {problem} after {attempts} attempts; {AGAIN}")


def _write(path: Path, text: str) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise disk_error(exc, path, ELSEWHERE) from exc
