"""Byte sizes as people write them (500MB, 5GB, 1.5GiB) and as we print them."""

from __future__ import annotations

import re

_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")
FORMS = "write it like 500MB, 5GB or 1.5GiB (kB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024)"


def parse_size(text: str) -> int:
    """Bytes in ``text``: kB, MB, GB are powers of 1000, KiB, MiB, GiB powers of 1024.

    A number without a unit is refused: `--hourly-limit 10` meant 10 bytes, and a run that
    waited an hour for them.
    """
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if match is not None and not unit:
        raise ValueError(f"{text!r} is a size without a unit; {FORMS}, or {match.group(1)}B for bytes")
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size; {FORMS}")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value <= 0:
        raise ValueError(f"{text!r} must be more than zero bytes")
    return value


def format_size(num_bytes: float) -> str:
    """A short human size in powers of 1000, the units the limits are given in."""
    value = float(num_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
