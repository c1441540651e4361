"""The README's examples are what the tool prints (issue 22 item 10): each block marked
``<!-- example: NAME -->`` is run against the stand-in by tests/readme_examples.py."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from readme_examples import README, check


def test_the_readme_examples_are_what_the_commands_print() -> None:
    problems = check()
    assert not problems, "\n".join(problems) + "\n(python tests/readme_examples.py --write fixes them)"


def test_a_readme_line_the_tool_does_not_print_is_found_and_rewritten(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    right = "retrying up to 4 more times, waiting at most 60 s in all…"
    wrong = "retrying up to 3 more times, waiting at most 56 s in all…"
    assert text.count(right) == 2  # in the offline example and in Troubleshooting
    readme = tmp_path / "README.md"
    readme.write_text(text.replace(right, wrong), encoding="utf-8")
    assert len(check(readme)) == 2
    assert check(readme, fix=True) == []
    assert readme.read_text(encoding="utf-8") == text


def test_the_offline_demo_needs_only_a_plain_install() -> None:
    """Issue 22 item 11: the README asked for `.[test]` (538 MB) to run the demo; the demo
    and its stand-in import nothing but the standard library, inatdl and each other."""
    assert "\npip install . && python tests/demo.py\n" in README.read_text(encoding="utf-8")
    tests = README.parent / "tests"
    for script in ("demo.py", "inat_server.py"):
        tree = ast.parse((tests / script).read_text(encoding="utf-8"))
        imported = {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        imported |= {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
        }
        tops = {name.split(".")[0] for name in imported}
        assert tops <= set(sys.stdlib_module_names) | {"inatdl", "inat_server", "__future__"}, (script, tops)
