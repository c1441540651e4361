"""Which split a photo goes to: pure functions, no pandas, so `photos fetch` never loads it.

A group (an observation, or an observer) is placed by a hash of the seed and the group's
key alone, compared against the cumulative shares. So the same data and seed always give
the same splits, a group never moves when other photos are added, a group whose photos
span several taxa still lands in one split, and each taxon's shares approach those asked
as its number of groups grows (each group is an independent uniform draw).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

#: The split names that Hugging Face's imagefolder recognises as train, validation and test.
SPLIT_NAMES = ("train", "validation", "test")
GROUP_BY = ("observation", "observer")
_SHARE_TOLERANCE = 1e-6


def parse_splits(text: str) -> tuple[tuple[str, float], ...]:
    """``train=0.8,validation=0.1,test=0.1`` → (("train", 0.8), ...); ValueError saying what
    is wrong otherwise (unknown or repeated name, a share not above 0, a sum not 1)."""
    splits: list[tuple[str, float]] = []
    for part in (p.strip() for p in text.split(",")):
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise ValueError(f"{part!r} is not NAME=SHARE (e.g. train=0.8,validation=0.1,test=0.1)")
        if name not in SPLIT_NAMES:
            raise ValueError(f"{name!r} is not a split name; use {', '.join(SPLIT_NAMES)}")
        if name in (n for n, _ in splits):
            raise ValueError(f"{name!r} is given twice")
        try:
            share = float(value)
        except ValueError:
            raise ValueError(f"{value.strip()!r} is not a number (the share of {name})") from None
        if not math.isfinite(share) or not 0 < share <= 1:
            raise ValueError(f"the share of {name} must be above 0 and at most 1, not {value.strip()}")
        splits.append((name, share))
    total = sum(share for _, share in splits)
    if abs(total - 1) > _SHARE_TOLERANCE:
        raise ValueError(f"the shares add up to {total:g}, not 1")
    return tuple(splits)


def unit_hash(seed: int, key: str) -> float:
    """A number in [0, 1) that depends only on the seed and the key, the same on every
    machine and Python version (unlike ``hash``)."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_for(position: float, splits: Sequence[tuple[str, float]]) -> str:
    """The split whose cumulative share interval holds ``position`` (a unit hash)."""
    upper = 0.0
    for name, share in splits:
        upper += share
        if position < upper:
            return name
    return splits[-1][0]  # the shares' rounding left a sliver above the last bound


def group_key(group_by: str, observation_id: str, observer: str) -> str:
    """The key a photo's group is hashed on; a photo without an observer is its own
    observation's group even under ``observer``."""
    if group_by == "observer" and observer:
        return f"observer:{observer}"
    return f"observation:{observation_id}"
