"""The tolerant readers of the API's JSON: each value of its type, or a safe nothing."""

from __future__ import annotations

from typing import Any

import pytest

from inatdl.jsonvalues import as_dict, as_id, as_int, as_list, as_number, as_text, results_of


@pytest.mark.parametrize(
    ("value", "integer", "identifier", "number"),
    [
        (5, 5, 5, 5),
        (0, 0, None, 0),
        (-3, -3, None, -3),
        (True, None, None, None),  # a bool is an int to Python, never a count or an id to the API
        (False, None, None, None),
        (4.5, None, None, 4.5),
        ("7", None, None, None),
        (None, None, None, None),
    ],
)
def test_numbers(value: Any, integer: int | None, identifier: int | None, number: float | None) -> None:
    assert as_int(value) == integer and as_id(value) == identifier and as_number(value) == number
    assert type(as_int(value)) is (int if integer is not None else type(None))


def test_text_lists_objects_and_results() -> None:
    assert (as_text("a"), as_text(1), as_text(None)) == ("a", None, None)
    assert (as_list([1]), as_list({"a": 1}), as_list("ab")) == ([1], [], [])
    assert (as_dict({"a": 1}), as_dict([1]), as_dict(None)) == ({"a": 1}, {}, {})
    assert results_of({"results": [{"id": 1}]}) == [{"id": 1}]
    assert results_of({"results": {"id": 1}}) == [] and results_of({}) == []
