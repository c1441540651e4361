"""iNaturalist's open data: the monthly dump of every open-licensed photo's metadata.

`opendata sync` downloads its four tables and makes a columnar copy (Parquet) that DuckDB
queries in seconds; `taxa resolve --source open-data` and the open-data photo source then
answer from that copy with no API request. DuckDB and pyarrow are imported only inside the
functions that need them, so `photos fetch` from the API starts as fast as before.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_OPEN_DATA_URL = "https://inaturalist-open-data.s3.amazonaws.com"
#: taxa.csv's match for a name that the dump knows only as inactive (it holds no synonyms).
INACTIVE = "inactive"


def default_open_data_dir() -> Path:
    """The user's cache folder by the platform's convention, with no extra dependency:
    ``~/.cache/inatdl/open-data`` on Linux (``$XDG_CACHE_HOME`` when set),
    ``~/Library/Caches/inatdl/open-data`` on macOS, ``%LOCALAPPDATA%\\inatdl\\Cache\\open-data``
    on Windows."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        return base / "inatdl" / "Cache" / "open-data"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "inatdl" / "open-data"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".cache"
    return base / "inatdl" / "open-data"
