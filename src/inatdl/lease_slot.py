"""Where the closing of an open lease goes when the state file cannot take it (a full disk).

A lease is written to the ledger as if all of it were spent, before its bytes are read
(budget.py), so that a crash overcounts, never under. Its closing replaces that by the
bytes the hosts really sent. When the disk is full the state file cannot take that write,
and every later run would count the whole lease (up to 50 MB) as sent. So the closing goes
into a small file made before any lease opens and rewritten in place, which needs no new
space, and the next run's budget writes it to the ledger.
"""

from __future__ import annotations

import os
from pathlib import Path

SLOT_BYTES = 64  # one closing: "<lease id> <at> <bytes>", padded


class LeaseSlot:
    """The file beside the state file that holds at most one lease's closing."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def allocate(self) -> None:
        """Make the slot, empty, while the disk has room: before a lease opens."""
        if not self.path.exists():
            self._write(b"")

    def keep(self, lease_id: int, at: float, num_bytes: int) -> None:
        """Write a lease's closing into the slot, in place (an OSError if it cannot)."""
        self._write(f"{lease_id} {at!r} {num_bytes}".encode())

    def kept(self) -> tuple[int, float, int] | None:
        """The closing a run could not write to the state file, if any."""
        try:
            words = self.path.read_bytes().split()
        except FileNotFoundError:
            return None
        try:
            lease_id, at, num_bytes = words
            return int(lease_id), float(at), int(num_bytes)
        except ValueError:  # empty, or not a closing
            return None

    def clear(self) -> None:
        self._write(b"")

    def _write(self, record: bytes) -> None:
        padded = record.ljust(SLOT_BYTES - 1) + b"\n"
        mode = "r+b" if self.path.exists() else "wb"
        with self.path.open(mode) as handle:
            handle.write(padded)
            handle.flush()
            os.fsync(handle.fileno())
