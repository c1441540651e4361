"""A small Lythrum world on the test server, and a way to run the CLI against it."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from click.testing import CliRunner, Result
from fakes import FakeClock
from inat_server import InatServer

from inatdl.cli import cli

SALICARIA, ALATUM, VARIETY, HYSSOPIFOLIUM, VIRGATUM, VIRGATUM_2 = 61299, 61300, 70001, 61303, 61304, 61305


def build_lythrum(inat: InatServer) -> None:
    """Taxa with the traps of real search results, and observations with mixed licences.

    Salicaria: observations 100-111, two photos each (ids obs*10, obs*10+1) with licences
    cycling cc-by, cc-by-nc, none; its variety: observation 120 (photos 1200 cc0, 1201 none);
    observation 130 has a flagged photo (1300) and a good one (1301); observation 140's photo
    1400 is gone (410). Alatum: observations 200-204 on the open-data host as .jpeg, cc0.
    """
    inat.add_taxon(1, "Plantae", rank="kingdom", common_name="Plants")
    inat.add_taxon(61298, "Lythrum", rank="genus", parent_id=1, common_name="Loosestrifes")
    inat.add_taxon(SALICARIA, "Lythrum salicaria", parent_id=61298, common_name="Purple Loosestrife")
    inat.add_taxon(VARIETY, "Lythrum salicaria tomentosum", rank="variety", parent_id=SALICARIA)
    inat.add_taxon(ALATUM, "Lythrum alatum", parent_id=61298, common_name="Winged Loosestrife")
    inat.add_taxon(
        61301, "Lythrum alatum lanceolatum", rank="variety", parent_id=ALATUM, observations_count=90_000
    )
    inat.add_taxon(HYSSOPIFOLIUM, "Lythrum hyssopifolium", parent_id=61298, observations_count=800)
    inat.add_taxon(
        61302,
        "Lythrum hyssopifolia",
        parent_id=61298,
        is_active=False,
        current_synonymous_taxon_ids=[HYSSOPIFOLIUM],
        observations_count=0,
    )
    inat.add_taxon(VIRGATUM, "Lythrum virgatum", parent_id=61298, observations_count=500)
    inat.add_taxon(VIRGATUM_2, "Lythrum virgatum", parent_id=61298, observations_count=20)
    # A common name that is the input name, on a much more observed taxon: it comes first.
    inat.add_taxon(
        99, "Ammannia robusta", parent_id=1, common_name="Lythrum tribracteatum", observations_count=10**6
    )
    inat.add_observations(
        SALICARIA, 12, first_id=100, photos_per_observation=2, license_codes=("cc-by", "cc-by-nc", None)
    )
    inat.add_observation(
        120, VARIETY, photos=[{"id": 1200, "license_code": "cc0"}, {"id": 1201, "license_code": None}]
    )
    inat.add_observation(
        130,
        SALICARIA,
        photos=[
            {"id": 1300, "license_code": "cc-by", "flagged": True},
            {"id": 1301, "license_code": "cc-by-sa"},
        ],
    )
    inat.add_observation(140, SALICARIA, photos=[{"id": 1400, "license_code": "cc-by", "gone": 410}])
    inat.add_observations(ALATUM, 5, first_id=200, hosts=("open",), exts=("jpeg",), license_codes=("cc0",))


SALICARIA_PHOTOS = sorted(
    [
        pid
        for i, pid in enumerate(p for obs in range(100, 112) for p in (obs * 10, obs * 10 + 1))
        if i % 3 != 2
    ]
    + [1200, 1301]
)
ALATUM_PHOTOS = [obs * 10 for obs in range(200, 205)]


def write_species(path: Path, names: Sequence[str], header: str = "Species") -> Path:
    path.write_text("\n".join([header, *names]) + "\n", encoding="utf-8")
    return path


def run(
    inat: InatServer,
    data_dir: Path,
    *args: str,
    clock: FakeClock | None = None,
    timeout: tuple[float, float] = (2.0, 2.0),
) -> Result:
    """Run the real command in-process, against the test server, on a fake clock."""
    obj = {"clock": clock or FakeClock(), "timeout": timeout}
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), "--api-url", inat.api_url, *args], obj=obj)


TAXA_HEADER = "input_name,taxon_id,name,rank,match,observations_count"


def write_taxa(data_dir: Path, taxa: Sequence[tuple[int, str]]) -> None:
    """A taxa.csv as `taxa resolve` writes it, for tests that need no name search."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "taxa.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(TAXA_HEADER.split(","))
        writer.writerows(
            [f"name {i}", taxon_id, name, "species", "exact", 1] for i, (taxon_id, name) in enumerate(taxa)
        )


def files(data_dir: Path) -> dict[str, bytes]:
    """Every file under photos/, by path relative to the data dir."""
    return {
        p.relative_to(data_dir).as_posix(): p.read_bytes()
        for p in sorted((data_dir / "photos").rglob("*"))
        if p.is_file()
    }


def manifest(data_dir: Path) -> list[dict[str, str]]:
    with (data_dir / "photos.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def manifest_ids(data_dir: Path) -> list[str]:
    return [row["photo_id"] for row in manifest(data_dir)]


def expected_files(inat: InatServer, size: str = "medium") -> dict[str, bytes]:
    """The files a fetch of salicaria and alatum must leave, byte for byte."""
    salicaria = {
        f"photos/Lythrum_salicaria/{p}_{size}.jpg": inat.photo_bytes(p, size) for p in SALICARIA_PHOTOS
    }
    alatum = {f"photos/Lythrum_alatum/{p}_{size}.jpeg": inat.photo_bytes(p, size) for p in ALATUM_PHOTOS}
    return {**salicaria, **alatum}


def fetch_command(inat: InatServer, data_dir: Path, *args: str) -> list[str]:
    """`inatdl photos fetch` as a child process runs it, on the real clock, paced for tests."""
    return [
        sys.executable,
        "-m",
        "inatdl",
        "--data-dir",
        str(data_dir),
        "--api-url",
        inat.api_url,
        "--api-rate",
        "1000",
        "photos",
        "fetch",
        *args,
    ]


def start(inat: InatServer, data_dir: Path, *args: str) -> subprocess.Popen[str]:
    """A fetch of small photos in a child process that a test can kill."""
    command = fetch_command(inat, data_dir, "--size", "small", *args)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def two_taxa(
    inat: InatServer, data: Path, observations: int, size: str, second: str = "Lythrum alatum"
) -> dict[str, bytes]:
    """Two listed taxa of ``observations`` one-photo observations each, the second's photos on
    the open-data host; the files a fetch at ``size`` must leave, by path."""
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(10, "Lythrum salicaria", parent_id=1)
    inat.add_taxon(20, second, parent_id=1)
    inat.add_observations(10, observations, first_id=1000)
    inat.add_observations(20, observations, first_id=5000, hosts=("open",))
    write_taxa(data, [(10, "Lythrum salicaria"), (20, second)])
    return {
        f"photos/{folder}/{(first + i) * 10}_{size}.jpg": inat.photo_bytes((first + i) * 10, size)
        for folder, first in (("Lythrum_salicaria", 1000), (second.replace(" ", "_"), 5000))
        for i in range(observations)
    }
