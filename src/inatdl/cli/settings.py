"""What every command runs with: the global options as `Settings` (and what tests replace),
Click's context settings, and how a command is stopped (SIGTERM taken as Ctrl-C, exit 130)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from inatdl.clock import Clock
from inatdl.constants import CONNECT_TIMEOUT, READ_TIMEOUT
from inatdl.opendata import DEFAULT_OPEN_DATA_URL, default_open_data_dir
from inatdl.output.console import Output

if TYPE_CHECKING:
    from inatdl.client import ApiClient, Timeout

EXIT_INTERRUPTED = 130
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@dataclass
class Settings:
    """The global options, and what tests may replace (the clock, the timeouts)."""

    data_dir: Path
    api_url: str
    api_rate: float
    verbose: bool
    quiet: bool
    clock: Clock = field(default_factory=Clock)
    timeout: Timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)
    open_data_url: str = DEFAULT_OPEN_DATA_URL
    open_data_dir: Path = field(default_factory=default_open_data_dir)

    @property
    def out(self) -> Output:
        return Output(self.quiet)

    def client(self, pool_size: int = 4) -> ApiClient:
        """The API's client; requests is imported here, so `inatdl --help` never loads it."""
        from inatdl.client import ApiClient, build_session

        session = build_session(pool_size)
        return ApiClient(self.api_url, session, self.clock, self.api_rate, timeout=self.timeout)


class sigterm_as_interrupt:
    """SIGTERM stops a fetch like Ctrl-C: state saved, exit 130."""

    def __enter__(self) -> None:
        self._previous: Callable[..., Any] | None = None
        try:
            self._previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # type: ignore[assignment]
        except ValueError:  # not the main thread (tests driving the CLI from a thread)
            self._previous = None

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def _raise_interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt
