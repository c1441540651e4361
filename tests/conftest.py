"""Shared pytest fixtures for inatdl's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from inat_server import InatServer

# ---------------------------------------------------------------------------
# Fake iNaturalist server (tests/inat_server.py)
# ---------------------------------------------------------------------------


@pytest.fixture
def inat() -> Iterator[InatServer]:
    """A started fake iNaturalist (API + both photo hosts), stopped after the test."""
    with InatServer() as server:
        yield server
