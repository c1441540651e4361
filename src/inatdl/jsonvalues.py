"""Tolerant readers of the API's JSON: a value of the expected type, or a safe "nothing".

The API's answers are trusted for their shape only as far as these readers check it: a
field may be missing, null or of another type (a bool is an int to Python, an id may
come as a string) without ending a run. Written once so that every reader agrees.
"""

from __future__ import annotations

from typing import Any


def as_int(value: Any) -> int | None:
    """An int that is not a bool (``True`` is an int to Python, never a count to the API)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_id(value: Any) -> int | None:
    """An id as the API gives it: a positive int (not a bool, a string or a float)."""
    number = as_int(value)
    return number if number is not None and number > 0 else None


def as_number(value: Any) -> int | float | None:
    """An int or a float that is not a bool (a rank level may be 5 or 4.5)."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def as_text(value: Any) -> str | None:
    """A string, or None."""
    return value if isinstance(value, str) else None


def as_list(value: Any) -> list[Any]:
    """A list, or an empty one."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    """A JSON object, or an empty one."""
    return value if isinstance(value, dict) else {}


def results_of(answer: dict[str, Any]) -> list[Any]:
    """The ``results`` list of an API answer (empty when missing or not a list)."""
    return as_list(answer.get("results"))
