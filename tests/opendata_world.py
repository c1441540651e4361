"""The open-data route's test helpers: the CLI run against the test server's open data."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result
from fakes import FakeClock
from inat_server import InatServer

from inatdl.cli import cli


def run_open(inat: InatServer, tmp_path: Path, *args: str, clock: FakeClock | None = None) -> Result:
    """The real command with the data dir, the API and the open data on the test server."""
    obj = {"clock": clock or FakeClock(), "timeout": (2.0, 2.0)}
    options = [
        "--data-dir", str(tmp_path / "data"),
        "--api-url", inat.api_url,
        "--open-data-url", inat.open_data_url,
        "--open-data-dir", str(tmp_path / "open-data"),
    ]  # fmt: skip
    return CliRunner().invoke(cli, [*options, *args], obj=obj)


def table_gets(inat: InatServer, table: str) -> list[int]:
    """The statuses of the GETs of one table, in order."""
    return [
        r.status
        for r in inat.open_data_requests()
        if r.method == "GET" and r.path.endswith(f"/{table}.csv.gz")
    ]
