"""The one HTTP session, the API pace, and retries with backoff."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from inatdl import PROJECT_URL, __version__
from inatdl.clock import Clock
from inatdl.constants import (
    API_ATTEMPTS,
    API_GIVE_UP_SECONDS,
    BACKOFF_BASE,
    BACKOFF_MAX,
    CONNECT_TIMEOUT,
    MAX_REDIRECTS,
    READ_TIMEOUT,
    RETRY_AFTER_MAX,
    RETRY_NOTICE_SECONDS,
)
from inatdl.errors import ApiError

log = logging.getLogger("inatdl")

USER_AGENT = f"inatdl/{__version__} (+{PROJECT_URL})"
Timeout = tuple[float, float]
JSON = dict[str, Any]


class _Session(requests.Session):
    """Reads the environment's proxy and CA bundle settings once per host, not per request.

    requests looks them up again on every call (about a third of its CPU per photo at
    hundreds of photos a second); the environment does not change during a run, so the
    answer for a host is kept. Proxies given to a call are merged as requests does.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(
        self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        if proxies:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, stream, verify, cert)
        settings = self._environment.get(key)
        if settings is None:
            settings = self._environment[key] = super().merge_environment_settings(
                url, proxies, stream, verify, cert
            )
        return {**settings, "proxies": dict(settings["proxies"])}


def build_session(pool_size: int = 10) -> requests.Session:
    """A session with our User-Agent and a connection pool as large as the workers.

    Retries are ours (see :func:`backoff_delay`), not urllib3's, because a body cut
    short or a 200 that is not JSON must be retried too, and waits go through the
    injectable clock; so the adapter itself never retries.
    """
    session = _Session()
    session.headers["User-Agent"] = USER_AGENT
    session.max_redirects = MAX_REDIRECTS
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=Retry(0, read=False))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Exponential with jitter (half fixed, half random) so that many workers do not
    retry in step; never shorter than the server's Retry-After.
    """
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2.0 ** (attempt - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_AFTER_MAX))
    return delay


def is_retryable(status: int) -> bool:
    """429 and every 5xx are worth another attempt; other statuses will not change."""
    return status == 429 or 500 <= status <= 599


def retry_after_seconds(response: requests.Response) -> float | None:
    """The Retry-After header in seconds, whether given as seconds or as an HTTP date."""
    return parse_retry_after(response.headers.get("Retry-After"))


def parse_retry_after(value: str | None) -> float | None:
    """A Retry-After value in seconds, whether given as seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, Retry().parse_retry_after(value))
    except Exception:  # an unreadable header is as good as none
        return None


def describe_failure(exc: BaseException) -> str:
    """A short phrase for a failed request, for logs and the final error line."""
    if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError)):
        return "timed out"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError)):
        return "connection closed before the whole body arrived"
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        if "refused" in text.lower():
            return "connection refused"
        if "reset" in text.lower() or "aborted" in text.lower():
            return "connection reset"
        if "resolve" in text.lower() or "name or service" in text.lower():
            return "host name not found"
        return "connection failed"
    return type(exc).__name__


class RateLimiter:
    """At most ``rate`` calls a second, however many threads ask."""

    def __init__(self, rate: float, clock: Clock) -> None:
        self.interval = 1.0 / rate
        self.clock = clock
        self._lock = threading.Lock()
        self._next_at: float | None = None

    def wait(self) -> None:
        with self._lock:
            now = self.clock.monotonic()
            at = now if self._next_at is None else max(now, self._next_at)
            self._next_at = at + self.interval
        self.clock.sleep(at - now)


class ApiClient:
    """GETs JSON from the iNaturalist API, paced and retried."""

    def __init__(
        self,
        base_url: str,
        session: requests.Session,
        clock: Clock,
        rate: float,
        timeout: Timeout = (CONNECT_TIMEOUT, READ_TIMEOUT),
        attempts: int = API_ATTEMPTS,
        give_up_after: float = API_GIVE_UP_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.clock = clock
        self.limiter = RateLimiter(rate, clock)
        self.timeout = timeout
        self.attempts = attempts
        self.give_up_after = give_up_after
        self.requests_made = 0

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> JSON:
        """The JSON object at ``path``; raises ApiError naming the URL when it cannot."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        try:
            shown = requests.Request("GET", url, params=params).prepare().url or url
        except _UNUSABLE_URL as exc:
            raise _unusable_url(url, exc) from exc
        started = self.clock.monotonic()
        problem = "no attempt made"
        told = False  # the user has been told that the API is being retried
        for attempt in range(1, self.attempts + 1):
            self.limiter.wait()
            self.requests_made += 1
            retry_after = None
            try:
                response = self.session.get(url, params=params, timeout=self.timeout)
            except _UNUSABLE_URL as exc:
                raise _unusable_url(url, exc) from exc
            except requests.RequestException as exc:
                problem = describe_failure(exc)
            else:
                if response.status_code == 200:
                    try:
                        data = response.json()
                    except ValueError:
                        problem = "answer was not valid JSON"
                    else:
                        if isinstance(data, dict):
                            return data
                        problem = "answer was not a JSON object"
                elif is_retryable(response.status_code):
                    problem = f"HTTP {response.status_code}"
                    retry_after = retry_after_seconds(response)
                else:
                    raise ApiError(
                        f"{shown} answered HTTP {response.status_code}: {_short_text(response.text)}"
                    )
            if attempt == self.attempts:
                break
            delay = backoff_delay(attempt, retry_after)
            elapsed = self.clock.monotonic() - started
            if retry_after is None and elapsed + delay > self.give_up_after:
                break
            log.debug("GET %s: %s; retry %d in %.1f s", shown, problem, attempt, delay)
            if not told and elapsed + delay > RETRY_NOTICE_SECONDS:
                told = True
                asked = delay if retry_after is not None else None
                left = self.attempts - attempt
                waits = min(self.give_up_after - elapsed, longest_backoff(attempt, self.attempts))
                log.warning("%s", retry_notice(problem, asked, left, waits))
            self.clock.sleep(delay)
        raise ApiError(
            f"could not get {shown} after {attempt} attempts: {problem}; "
            "check your connection and --api-url, then run the same command again"
        )


_UNUSABLE_URL = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
)


def _unusable_url(url: str, exc: Exception) -> ApiError:
    """A URL that no request can be made to (no scheme, a bad host, an unknown scheme):
    the user's --api-url, not a fault of the program."""
    return ApiError(f"cannot use the API URL {url}: {exc}; check --api-url")


def longest_backoff(attempt: int, attempts: int) -> float:
    """The most the waits after failed attempts ``attempt`` to ``attempts - 1`` can add up to."""
    return sum(min(BACKOFF_MAX, BACKOFF_BASE * 2.0 ** (n - 1)) for n in range(attempt, attempts))


def retry_notice(problem: str, retry_after: float | None, attempts_left: int, waits: float) -> str:
    """The one line a user sees when the API has not answered for a few seconds, so that
    a run without network is not silent for minutes; it promises no more than the loop does."""
    if retry_after is not None:
        return f"iNaturalist API busy ({problem}); asked to wait, retrying in {retry_after:.0f} s…"
    tries = "1 more time" if attempts_left == 1 else f"{attempts_left} more times"
    return (
        f"iNaturalist API not answering ({problem}); retrying up to {tries}, "
        f"waiting at most {waits:.0f} s in all…"
    )


def _short_text(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
