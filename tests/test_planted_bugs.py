"""tests/planted_bugs.py stays able to plant its bugs.

It plants each bug by replacing one line of src/ (and takes minutes to run, so it is run by
hand, not by every test run): a refactor that changes such a line must change the plant too,
or that bug silently stops being checked.
"""

from __future__ import annotations

import pytest
from planted_bugs import BUGS, ROOT, Planted


@pytest.mark.parametrize("bug", BUGS, ids=[bug.name for bug in BUGS])
def test_every_planted_bug_still_names_one_line_of_the_code(bug: Planted) -> None:
    text = (ROOT / "src" / "inatdl" / bug.path).read_text(encoding="utf-8")
    assert text.count(bug.old) == 1, f"{bug.name}: update its line in tests/planted_bugs.py"
