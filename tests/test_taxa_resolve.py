"""`inatdl taxa resolve`, over real HTTP against the test server."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeClock
from inat_server import Fault, InatServer
from world import ALATUM, HYSSOPIFOLIUM, SALICARIA, VIRGATUM, build_lythrum, run, write_species

from inatdl import __version__, taxa
from inatdl.taxa import resolve_name


def read_taxa(data_dir: Path) -> list[dict[str, str]]:
    with (data_dir / "taxa.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def world(inat: InatServer) -> InatServer:
    build_lythrum(inat)
    return inat


def test_resolves_each_kind_of_match(world: InatServer, tmp_path: Path) -> None:
    species = write_species(
        tmp_path / "species.csv",
        [
            "lythrum salicaria",
            "  LYTHRUM   alatum ",
            "",
            "lythrum hyssopifolia",
            "lythrum virgatum",
            "lythrum tribracteatum",
            "Lythrum salicaria",
            "lythrum theodori",
        ],
    )
    result = run(world, tmp_path / "data", "taxa", "resolve", str(species))
    assert result.exit_code == 0, result.output
    rows = read_taxa(tmp_path / "data")
    assert [r["input_name"] for r in rows] == [
        "lythrum salicaria",
        "  LYTHRUM   alatum ",
        "lythrum hyssopifolia",
        "lythrum virgatum",
        "lythrum tribracteatum",
        "lythrum theodori",
    ]
    assert list(rows[0]) == ["input_name", "taxon_id", "name", "rank", "match", "observations_count"]
    by_name = {r["input_name"]: r for r in rows}
    assert by_name["lythrum salicaria"] == {
        "input_name": "lythrum salicaria",
        "taxon_id": str(SALICARIA),
        "name": "Lythrum salicaria",
        "rank": "species",
        "match": "exact",
        "observations_count": "15",
    }
    # the variety "Lythrum alatum lanceolatum" is far more observed and comes first: not taken
    assert (by_name["  LYTHRUM   alatum "]["taxon_id"], by_name["  LYTHRUM   alatum "]["match"]) == (
        str(ALATUM),
        "exact",
    )
    assert by_name["lythrum hyssopifolia"]["match"] == "synonym"
    assert by_name["lythrum hyssopifolia"]["taxon_id"] == str(HYSSOPIFOLIUM)
    assert by_name["lythrum hyssopifolia"]["name"] == "Lythrum hyssopifolium"
    assert (by_name["lythrum virgatum"]["match"], by_name["lythrum virgatum"]["taxon_id"]) == (
        "ambiguous",
        str(VIRGATUM),
    )
    assert by_name["lythrum tribracteatum"]["match"] == "not_found"  # a common name is not a match
    assert by_name["lythrum theodori"] == {
        "input_name": "lythrum theodori",
        "taxon_id": "",
        "name": "",
        "rank": "",
        "match": "not_found",
        "observations_count": "",
    }
    out = result.stdout
    assert "Not found on iNaturalist (2): lythrum tribracteatum, lythrum theodori" in out
    assert "also taxon 61305 (20 obs.)" in out  # the other Lythrum virgatum is named
    assert f"Wrote {tmp_path / 'data' / 'taxa.csv'} (4 of 6 names resolved)." in out
    # one search per distinct name, plus one lookup of the synonym's current taxon
    searches = world.requests_to("/v1/taxa")
    assert len(searches) == 7
    assert all(
        r.header("User-Agent") == f"inatdl/{__version__} (+https://github.com/inatdl/inatdl)"
        for r in searches
    )


def test_rerun_asks_only_for_new_and_unresolved_names(world: InatServer, tmp_path: Path) -> None:
    species = write_species(tmp_path / "s.csv", ["lythrum salicaria", "lythrum theodori"])
    assert run(world, tmp_path / "d", "taxa", "resolve", str(species)).exit_code == 0
    world.clear_requests()
    write_species(species, ["lythrum salicaria", "lythrum theodori", "lythrum alatum"])
    assert run(world, tmp_path / "d", "taxa", "resolve", str(species)).exit_code == 0
    assert sorted(r.query["q"] for r in world.requests_to("/v1/taxa")) == [
        "lythrum alatum",
        "lythrum theodori",
    ]
    assert [r["taxon_id"] for r in read_taxa(tmp_path / "d")] == [str(SALICARIA), "", str(ALATUM)]
    world.clear_requests()
    assert run(world, tmp_path / "d", "taxa", "resolve", str(species), "--refresh").exit_code == 0
    assert len(world.requests_to("/v1/taxa")) == 3


def test_other_column_and_bom(world: InatServer, tmp_path: Path) -> None:
    species = tmp_path / "s.csv"
    species.write_bytes("\ufeffid,Scientific name\n1,Lythrum alatum\n".encode())
    result = run(world, tmp_path / "d", "taxa", "resolve", str(species), "--column", "Scientific name")
    assert result.exit_code == 0, result.output
    assert read_taxa(tmp_path / "d")[0]["taxon_id"] == str(ALATUM)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "species file {path} not found"),
        (b"", "{path} is empty; it needs a header row with a 'Species' column"),
        (b"Species\n", "{path} has a header but no names in column 'Species'"),
        (
            b"Name,Genus\nx,y\n",
            "{path} has no column 'Species'; columns found: 'Name', 'Genus'; choose one with --column",
        ),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "{path} is not a CSV file (it holds binary data)"),
        (
            "Species\nLythrum salicaria\nAmmannia coccínea\n".encode("latin-1"),
            "{path} is not UTF-8 text (byte 0xed on line 3); save it as UTF-8",
        ),
        (b'Species\n"lythrum\x0b', "{path} is not a readable CSV"),
        (
            b'Species\nLythrum alatum\n"Lythrum salicaria\nLythrum portula\n',
            "{path} is not a readable CSV: unexpected end of data in the row from line 3; check its quotes",
        ),
        (
            b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00",  # an Excel workbook (.xlsx)
            "{path} is not a CSV file (it holds binary data); save it as CSV (in Excel: 'CSV UTF-8')",
        ),
    ],
)
def test_bad_species_files_get_one_line(
    inat: InatServer, tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "species.csv"
    if content is not None:
        path.write_bytes(content)
    result = run(inat, tmp_path / "d", "taxa", "resolve", str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: " + message.format(path=path))
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not inat.requests and not (tmp_path / "d" / "taxa.csv").exists()


def test_api_faults_are_retried_with_backoff(world: InatServer, tmp_path: Path) -> None:
    world.add_fault(Fault("status", target="taxa", status=503, first_attempts=1))
    world.add_fault(Fault("status", target="taxa", status=429, retry_after="7", times=1))
    world.add_fault(Fault("badjson", target="taxa", times=1))
    world.add_fault(Fault("reset", target="taxa", times=1))
    clock = FakeClock()
    species = write_species(tmp_path / "s.csv", ["lythrum salicaria", "lythrum alatum"])
    result = run(world, tmp_path / "d", "taxa", "resolve", str(species), clock=clock)
    assert result.exit_code == 0, result.output
    assert [r["taxon_id"] for r in read_taxa(tmp_path / "d")] == [str(SALICARIA), str(ALATUM)]
    assert any(s >= 7 for s in clock.sleeps)  # Retry-After honoured
    statuses = [r.status for r in world.requests_to("/v1/taxa")]
    assert statuses.count(200) >= 2 and 503 in statuses and 429 in statuses


def test_unreachable_api_gives_up_within_two_minutes(world: InatServer, tmp_path: Path) -> None:
    clock = FakeClock()
    species = write_species(tmp_path / "s.csv", ["lythrum salicaria"])
    dead = "http://127.0.0.1:9/v1"  # discard port: connection refused
    from click.testing import CliRunner

    from inatdl.cli import cli

    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(tmp_path / "d"), "--api-url", dead, "taxa", "resolve", str(species)],
        obj={"clock": clock, "timeout": (1.0, 1.0)},
    )
    assert result.exit_code == 1
    notice, error = result.stderr.splitlines()  # the retrying told once, then the one error line
    assert notice.startswith("iNaturalist API not answering (connection refused); retrying up to ")
    assert error.startswith(f"Error: could not get {dead}/taxa?q=lythrum+salicaria")
    assert "connection refused" in error and "run the same command again" in error
    assert 30 < sum(clock.sleeps) <= 120
    assert len(clock.sleeps) >= 4


def test_a_failure_part_way_keeps_what_was_resolved(world: InatServer, tmp_path: Path) -> None:
    species = write_species(tmp_path / "s.csv", ["lythrum salicaria", "lythrum alatum"])
    world.throttle(after=1, every=1, retry_after="5", target="taxa")  # the second name never passes
    result = run(world, tmp_path / "d", "taxa", "resolve", str(species))
    assert result.exit_code == 1
    assert "HTTP 429" in result.stderr
    assert "(1 of 2 names were resolved and saved; the same command resolves the rest)" in result.stderr
    # the name not asked is in taxa.csv as `error`, told apart from a name not found
    assert [(r["input_name"], r["match"]) for r in read_taxa(tmp_path / "d")] == [
        ("lythrum salicaria", "exact"),
        ("lythrum alatum", "error"),
    ]
    assert "Not asked, iNaturalist could not be reached (1): lythrum alatum" in result.stdout
    assert "Not found" not in result.stdout
    world.clear_faults()
    world.clear_requests()
    assert run(world, tmp_path / "d", "taxa", "resolve", str(species)).exit_code == 0
    assert [r.query["q"] for r in world.requests_to("/v1/taxa")] == ["lythrum alatum"]
    assert [r["taxon_id"] for r in read_taxa(tmp_path / "d")] == [str(SALICARIA), str(ALATUM)]


def test_ctrl_c_part_way_keeps_what_was_resolved(
    world: InatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the third name is asked: the two answered are saved, and the same
    command asks only for the rest (a list of thousands of names takes an hour or more)."""
    names = ["lythrum salicaria", "lythrum alatum", "lythrum virgatum", "lythrum hyssopifolium"]
    species = write_species(tmp_path / "s.csv", names)
    asked: list[str] = []

    def ctrl_c_at_the_third(client: Any, name: str) -> Any:
        asked.append(name)
        if len(asked) == 3:
            raise KeyboardInterrupt
        return resolve_name(client, name)

    monkeypatch.setattr(taxa, "resolve_name", ctrl_c_at_the_third)
    result = run(world, tmp_path / "d", "taxa", "resolve", str(species))
    assert result.exit_code == 130
    assert result.stderr == "Error: interrupted; the same command resumes\n"
    assert [(r["input_name"], r["match"]) for r in read_taxa(tmp_path / "d")] == [
        ("lythrum salicaria", "exact"),
        ("lythrum alatum", "exact"),
        ("lythrum virgatum", "error"),
        ("lythrum hyssopifolium", "error"),
    ]
    monkeypatch.undo()
    world.clear_requests()
    assert run(world, tmp_path / "d", "taxa", "resolve", str(species)).exit_code == 0
    assert [r.query["q"] for r in world.requests_to("/v1/taxa")] == names[2:]
    assert all(r["taxon_id"] for r in read_taxa(tmp_path / "d"))


def test_api_rate_is_respected(world: InatServer, tmp_path: Path) -> None:
    clock = FakeClock()
    names = ["lythrum salicaria", "lythrum alatum", "lythrum virgatum", "lythrum junceum"]
    species = write_species(tmp_path / "s.csv", names)
    result = run(world, tmp_path / "d", "--api-rate", "0.5", "taxa", "resolve", str(species), clock=clock)
    assert result.exit_code == 0, result.output
    assert sum(clock.sleeps) == pytest.approx(2.0 * 3, abs=0.01)  # 4 requests, 2 s apart


def test_version_and_help(inat: InatServer, tmp_path: Path) -> None:
    result = run(inat, tmp_path, "--version")
    assert result.stdout == f"inatdl, version {__version__}\n"


@pytest.mark.parametrize(
    ("content", "written"),
    [
        (b"Species;Family\nLythrum salicaria;Lythraceae\nLythrum alatum;Lythraceae\n", None),
        (
            b"family\tspecies\tnote\r\nLythraceae\tLythrum salicaria\t\r\nLythraceae\tLythrum alatum\tx\r\n",
            None,
        ),
        (b"Lythrum salicaria\nLythrum alatum\n", None),  # plain text, one name a line
        (b"\xef\xbb\xbfLythrum salicaria\r\n\r\n  lythrum  SALICARIA \r\nLythrum alatum\r\n", None),
        (b"Species\nLythrum salicaria\n\nLythrum alatum\n", None),  # a first line "Species" is a header
        (b"\n\n;Species;\n;Lythrum salicaria;\n\n;Lythrum alatum;\n", None),
        (b'"Species","Note"\n"Lythrum salicaria","tall, purple"\nLythrum alatum,"a ""winged"" one"\n', None),
        (b'Note;Species\n"a; b";"Lythrum salicaria"\n"";Lythrum alatum\n', None),
        ("Species\tFamily\r\nLythrum salicaria\tLythraceae\r\nLythrum alatum\tLythraceae\r\n", "utf-16"),
        ("Lythrum salicaria\nLythrum alatum\n", "utf-16-be"),
        (b"Lythrum salicaria;\nLythrum alatum ;;\n", None),  # one column, delimiters left behind
    ],
    ids=[
        "semicolons",
        "tabs",
        "plain",
        "plain-bom-crlf-blank-repeated",
        "one-column",
        "leading-blank-lines",
        "quoted",
        "quoted-semicolons",
        "excel-unicode-text",
        "utf16-be-plain",
        "plain-trailing-delimiters",
    ],
)
def test_species_lists_as_people_have_them(
    world: InatServer, tmp_path: Path, content: bytes | str, written: str | None
) -> None:
    path = tmp_path / "species.txt"
    if isinstance(content, str):
        assert written is not None
        path.write_bytes(
            content.encode(written) if written != "utf-16-be" else b"\xfe\xff" + content.encode(written)
        )
    else:
        path.write_bytes(content)
    result = run(world, tmp_path / "d", "taxa", "resolve", str(path))
    assert result.exit_code == 0, result.output
    assert [r.query["q"].casefold() for r in world.requests_to("/v1/taxa")] == [
        "lythrum salicaria",
        "lythrum alatum",
    ]
    assert [r["taxon_id"] for r in read_taxa(tmp_path / "d")] == [str(SALICARIA), str(ALATUM)]


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (
            b"Name;Genus\nx;y\n",
            (),
            "{path} has no column 'Species'; columns found: 'Name', 'Genus'; choose one with --column",
        ),
        (
            b"Name\tGenus\tSpecies name\nx\ty\tz\n",
            (),
            "{path} has no column 'Species'; columns found: 'Name', 'Genus', 'Species name'",
        ),
        (
            b"Lythrum salicaria\nLythrum alatum\n",
            ("--column", "Scientific name"),
            "{path} has no column 'Scientific name'; columns found: 'Lythrum salicaria'",
        ),
        (b"\n \n\t\n", (), "{path} is empty; it needs a header row with a 'Species' column"),
        (b"\xef\xbb\xbf\r\n", (), "{path} is empty"),
        (b"Species;Family\n;Lythraceae\n", (), "{path} has a header but no names in column 'Species'"),
        (b"\xff\xfeL\x00y\x00\x00\xd8", (), "{path} is not readable UTF-16 text; save it as UTF-8"),
        ("Species\nLythrum\n".encode("utf-16-le"), (), "{path} is not a CSV file (it holds binary data)"),
        (b'Species;Note\nLythrum salicaria;"unended\n', (), "{path} is not a readable CSV"),
    ],
)
def test_bad_species_lists_get_one_line(
    inat: InatServer, tmp_path: Path, content: bytes, args: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "species.txt"
    path.write_bytes(content)
    result = run(inat, tmp_path / "d", "taxa", "resolve", str(path), *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: " + message.format(path=path))
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not inat.requests and not (tmp_path / "d" / "taxa.csv").exists()
