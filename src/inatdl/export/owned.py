"""The files an export owns, compared with the previous export's in a temporary SQLite
database: an imagefolder of a million photos owns a million files, whose names as Python
strings took ~100 MB, and the sorted lists and sets made of them as much again."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from types import TracebackType

#: Names fetched from the database at once.
_BATCH = 4096


class FileLists:
    """The previous export's files and this one's, sorted and compared by SQLite (its
    TEXT order is the code points' order, as Python sorts), read back a batch at a time."""

    def __init__(self, previous: Iterable[str], now: Iterable[str]) -> None:
        # "": a private database in a temporary file, removed when closed; pages beyond the
        # cache go to that file, not to this process's memory.
        self.database = sqlite3.connect("")
        try:
            self.database.executescript(
                "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -16384;"
                "CREATE TABLE previous (name TEXT); CREATE TABLE now (name TEXT);"
            )
            for table, names in (("previous", previous), ("now", now)):
                self.database.executemany(f"INSERT INTO {table} VALUES (?)", ((n,) for n in names))
            # Indexed once filled (one sort), not as the names come (a page read and written
            # for each of a million names in random order: twice the time); the queries
            # below then merge the two indexes.
            self.database.executescript(
                "CREATE INDEX previous_name ON previous (name); CREATE INDEX now_name ON now (name);"
            )
        except BaseException:
            self.database.close()
            raise

    def both(self) -> Iterator[str]:
        """Every file of either export: what the state names while this one is written."""
        return self._names("SELECT name FROM previous UNION SELECT name FROM now ORDER BY name")

    def stale(self) -> Iterator[str]:
        """The previous export's files that this one does not own: to remove."""
        return self._names("SELECT name FROM previous EXCEPT SELECT name FROM now ORDER BY name")

    def now(self) -> Iterator[str]:
        """This export's files."""
        return self._names("SELECT DISTINCT name FROM now ORDER BY name")

    def _names(self, query: str) -> Iterator[str]:
        cursor = self.database.execute(query)
        while batch := cursor.fetchmany(_BATCH):
            for (name,) in batch:
                yield name

    def __enter__(self) -> FileLists:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.database.close()
