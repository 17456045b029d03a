"""Every slow test runs somewhere: the default command deselects them (pyproject's ``-m 'not slow'``), so
each file that holds one must be named in a ``pytest ... -m slow`` step of ``.ci/run``."""

from __future__ import annotations

import re

from conftest import ROOT


def test_every_file_with_slow_tests_is_in_a_slow_ci_step():
    slow = re.compile(r"^\s*(@pytest\.mark\.slow\b|pytestmark\s*=.*pytest\.mark\.slow\b)", re.MULTILINE)
    marked = {p.name for p in (ROOT / "tests").glob("test_*.py") if slow.search(p.read_text())}
    steps = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if not line.lstrip().startswith("#") and "pytest" in line and re.search(r"-m\s+slow\b", line)
    ]
    in_ci = {name for line in steps for name in re.findall(r"tests/(test_\w+\.py)", line)}
    assert marked, "no slow tests found: the check would pass vacuously"
    assert marked <= in_ci, f"slow tests that no CI step runs: {sorted(marked - in_ci)}"
