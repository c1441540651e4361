"""The command line itself: help with an example everywhere, -v, the pace of API requests."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from fakes import FakeClock
from inat_server import Fault, InatServer
from world import build_lythrum, run, write_species, write_taxa

from inatdl.cli import cli
from inatdl.client import RateLimiter
from inatdl.clock import Clock


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += all_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("path", all_commands(cli), ids=lambda p: " ".join(p) or "inatdl")
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.stdout and "inatdl " in result.stdout.split("Example", 1)[1]


def test_environment_variables_and_options(
    inat: InatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    species = tmp_path / "s.csv"
    species.write_text("Species\nlythrum salicaria\n", encoding="utf-8")
    monkeypatch.setenv("INATDL_DATA_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("INATDL_API_URL", inat.api_url)
    result = CliRunner().invoke(cli, ["taxa", "resolve", str(species)], obj={})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-env" / "taxa.csv").exists()
    result = CliRunner().invoke(
        cli, ["--data-dir", str(tmp_path / "opt"), "taxa", "resolve", str(species)], obj={}
    )
    assert (tmp_path / "opt" / "taxa.csv").exists()  # the option wins
    monkeypatch.setenv("INATDL_API_RATE", "fast")
    result = CliRunner().invoke(cli, ["taxa", "resolve", str(species)])
    assert result.exit_code == 2 and "Invalid value for '--api-rate'" in result.stderr


def test_verbose_shows_the_traceback_and_debug_logs(inat: InatServer, tmp_path: Path) -> None:
    quiet = run(inat, tmp_path / "d", "taxa", "resolve", str(tmp_path / "missing.csv"))
    assert quiet.stderr == f"Error: species file {tmp_path / 'missing.csv'} not found\n"
    loud = run(inat, tmp_path / "d", "-v", "taxa", "resolve", str(tmp_path / "missing.csv"))
    assert loud.exit_code == 1
    assert "Traceback (most recent call last)" in loud.stderr and "SpeciesFileError" in loud.stderr
    assert loud.stderr.endswith(quiet.stderr)


def test_verbose_logs_retries(inat: InatServer, tmp_path: Path) -> None:
    inat.add_taxon(1, "Lythrum salicaria")
    inat.add_fault(Fault("status", target="taxa", status=503, times=1))
    species = tmp_path / "s.csv"
    species.write_text("Species\nlythrum salicaria\n", encoding="utf-8")
    result = run(inat, tmp_path / "d", "-v", "taxa", "resolve", str(species))
    assert result.exit_code == 0
    assert "HTTP 503; retry 1 in" in result.stderr


class FrozenClock(Clock):
    """Time that does not move: each sleep says when its caller would go on."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wakeups: list[float] = []

    def monotonic(self) -> float:
        return 100.0

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.wakeups.append(100.0 + seconds)


def test_rate_limiter_spaces_requests_across_threads() -> None:
    clock = FrozenClock()
    limiter = RateLimiter(2.0, clock)  # 2 a second

    def ask() -> None:
        for _ in range(10):
            limiter.wait()

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wakeups = sorted(clock.wakeups)
    assert len(wakeups) == 80
    gaps = [later - earlier for earlier, later in zip(wakeups, wakeups[1:], strict=False)]
    assert all(gap == pytest.approx(0.5) for gap in gaps)


def test_workers_download_concurrently(inat: InatServer, tmp_path: Path) -> None:
    """The host holds each photo request until all 8 are in at once; one at a time, they
    never would be, and the gate breaks."""
    inat.add_taxon(10, "Quercus robur")
    inat.add_observations(10, 8, first_id=1)
    gate = threading.Barrier(8, timeout=10)

    def hold_photos(host: str, path: str, query: dict[str, str]) -> None:
        if path.startswith("/photos/"):
            with contextlib.suppress(threading.BrokenBarrierError):
                gate.wait()

    inat.on_request = hold_photos
    data = tmp_path / "data"
    write_taxa(data, [(10, "Quercus robur")])
    assert run(inat, data, "photos", "fetch", "--workers", "8").exit_code == 0
    assert len(inat.photo_requests()) == 8
    assert not gate.broken


@pytest.mark.parametrize("rate", ["nan", "inf", "0", "-1", "fast"])
def test_api_rate_must_be_a_positive_number(inat: InatServer, tmp_path: Path, rate: str) -> None:
    result = run(inat, tmp_path, "--api-rate", rate, "taxa", "resolve", "x.csv")
    assert result.exit_code == 2 and "--api-rate" in result.stderr
    if rate == "fast":
        assert result.stderr.endswith(
            "Error: Invalid value for '--api-rate': 'fast' is not a valid number.\n"
        )


@pytest.mark.parametrize(
    "api_url", ["foo", "api.inaturalist.org/v1", "http://[::1/v1", "ftp://example.org/v1", "https:///v1"]
)
def test_an_unusable_api_url_is_a_usage_error_naming_the_option(tmp_path: Path, api_url: str) -> None:
    """Refused before the command starts (it wrote taxa.csv with every name an error, exit 1)."""
    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(tmp_path / "d"), "--api-url", api_url, "taxa", "observed", "--place-id", "7"],
        obj={"clock": FakeClock()},
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--api-url': {api_url!r} is not an http(s) URL; "
        "write it like https://api.inaturalist.org/v1"
    )
    assert not (tmp_path / "d").exists()


def test_an_unusable_url_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(tmp_path / "d"), "opendata", "sync"],
        env={"INATDL_OPEN_DATA_URL": "bucket/open-data"},
        obj={"clock": FakeClock()},
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--open-data-url': 'bucket/open-data' (from INATDL_OPEN_DATA_URL) is not "
        "an http(s) URL; write it like https://inaturalist-open-data.s3.amazonaws.com"
    )


@pytest.mark.parametrize(
    "command",
    [("taxa", "resolve", "{species}"), ("photos", "fetch", "--dry-run"), ("photos", "fetch", "--help")],
)
def test_a_reader_that_stops_reading_ends_the_run_quietly(
    world: InatServer, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """`inatdl ... | head`: once the reader is gone, the command exits with the code its
    work earns (0 here: the reader's leaving is not a failure), the same every time, with
    nothing on stderr; not "unexpected BrokenPipeError ... please report it", nor Click's 1."""
    species = write_species(tmp_path / "species.csv", ["lythrum salicaria"])
    args = [a.replace("{species}", str(species)) for a in command]
    env = {**os.environ, "INATDL_API_URL": world.api_url, "INATDL_DATA_DIR": str(tmp_path / "data")}
    child = subprocess.Popen(
        [sys.executable, "-m", "inatdl", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout is not None
    child.stdout.close()  # the reader is gone before the first line
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 0
    assert b"Error" not in stderr and b"Traceback" not in stderr, stderr  # progress lines may be there


def test_sizes_are_matched_ignoring_case_by_every_command(inat: InatServer, tmp_path: Path) -> None:
    """`photos fetch --size Medium` fetches what `dataset export --size Medium` exports."""
    build_lythrum(inat)
    species = write_species(tmp_path / "species.csv", ["Lythrum alatum"])
    data = tmp_path / "d"
    assert run(inat, data, "taxa", "resolve", str(species)).exit_code == 0
    fetched = run(inat, data, "photos", "fetch", "--size", "Square,MEDIUM", "--max-per-taxon", "2")
    assert fetched.exit_code == 0, fetched.output
    exported = run(inat, data, "dataset", "export", str(tmp_path / "out"), "--size", "Medium")
    assert exported.exit_code == 0, exported.output
    assert sorted(p.name.split("_")[1] for p in (tmp_path / "out").rglob("*.jp*g")) == ["medium.jpeg"] * 2


def test_the_photos_groups_help_names_both_its_commands() -> None:
    """It said "Download the photos…" though `photos plan` downloads nothing."""
    result = CliRunner().invoke(cli, ["photos", "--help"])
    assert result.exit_code == 0
    about = " ".join(result.output.split("Example:")[0].split("\n", 1)[1].split())  # after the usage line
    assert about.startswith("The photos of the resolved taxa: download them (fetch")
    assert "(plan: a Parquet file for img2dataset)" in about


def test_the_urls_are_shown_as_url_in_the_help() -> None:
    shown = CliRunner().invoke(cli, ["--help"]).stdout
    assert re.search(r"--api-url URL  +The iNaturalist API base", shown)
    assert re.search(r"--open-data-url URL  +The open data's base", shown)


def test_one_shard_written_is_said_in_the_singular(inat: InatServer, tmp_path: Path) -> None:
    build_lythrum(inat)
    species = write_species(tmp_path / "species.csv", ["Lythrum alatum"])
    data = tmp_path / "d"
    assert run(inat, data, "taxa", "resolve", str(species)).exit_code == 0
    assert run(inat, data, "photos", "fetch", "--size", "square", "--max-per-taxon", "2").exit_code == 0
    exported = run(inat, data, "dataset", "export", str(tmp_path / "out"), "--format", "webdataset")
    assert exported.exit_code == 0, exported.output
    assert ": 2 added (1 file written, 0 unchanged), 0 already there, 0 removed." in exported.stdout
