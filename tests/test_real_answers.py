"""The API answering as the real one does, not as the test data first assumed (issue 22).

Placeholders for photos without a file, names matched through another of their names,
servers that page smaller than asked, an API that cannot be reached while names are
resolved: each test here failed before the code learnt that answer.
"""

from __future__ import annotations

from pathlib import Path

from inat_server import NO_FILE_PATH, InatServer
from world import files, manifest, run, write_taxa


def test_a_photo_without_a_file_is_a_placeholder_never_downloaded(inat: InatServer, tmp_path: Path) -> None:
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(10, "Lythrum salicaria", parent_id=1)
    inat.add_observation(100, 10, photos=[{"id": 1000}, {"id": 1001, "no_file": True}])
    data = tmp_path / "data"
    write_taxa(data, [(10, "Lythrum salicaria")])
    result = run(inat, data, "photos", "fetch", "--size", "medium")
    assert result.exit_code == 0, result.output
    assert list(files(data)) == ["photos/Lythrum_salicaria/1000_medium.jpg"]
    assert [row["photo_id"] for row in manifest(data)] == ["1000"]
    assert not inat.requests_to("/attachment_defaults") and NO_FILE_PATH.startswith("/attachment_defaults/")
    assert "Skipped: 1 placeholder" in result.stdout
