"""Shared pytest fixtures for inatdl's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from inat_server import InatServer
from world import build_lythrum, run, write_species

# Speed is for benchmarks/, not for tests: a property test must not fail because a loaded
# machine ran one of its examples for more than hypothesis's default 200 ms.
settings.register_profile("inatdl", deadline=None)
settings.load_profile("inatdl")

# ---------------------------------------------------------------------------
# Fake iNaturalist server (tests/inat_server.py)
# ---------------------------------------------------------------------------


@pytest.fixture
def inat() -> Iterator[InatServer]:
    """A started fake iNaturalist (API + both photo hosts), stopped after the test."""
    with InatServer() as server:
        yield server


@pytest.fixture
def world(inat: InatServer, tmp_path: Path) -> InatServer:
    """The Lythrum world (tests/world.py), with salicaria and alatum resolved into tmp_path/data."""
    build_lythrum(inat)
    species = write_species(
        tmp_path / "species.csv", ["lythrum salicaria", "lythrum alatum", "lythrum theodori"]
    )
    assert run(inat, tmp_path / "data", "taxa", "resolve", str(species)).exit_code == 0
    inat.clear_requests()
    return inat
