"""The stress suite's helpers: a misbehaving compiler wrapper, and what the suite counted."""

from __future__ import annotations

import stat
import sys
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/helpers.py

from helpers import Runner

COUNTS: dict[str, Any] = defaultdict(int)

WRAPPER = """\
#!/bin/sh
# A C compiler that counts library builds and misbehaves in them when asked (through variables
# outside the cache key); --version and the fast binder's compile behave.
case " $* " in
*" -MD "*)
    echo $$ >> "{count}"
    if [ -n "$STRESS_STARTED" ]; then touch "$STRESS_STARTED"; fi
    if [ -n "$STRESS_SLEEP" ]; then sleep "$STRESS_SLEEP"; fi
    if [ -n "$STRESS_DIE" ]; then kill -9 $$; fi
    ;;
esac
exec gcc "$@"
"""


class StressRunner(Runner):
    """A Runner whose C compiler is a counting wrapper around gcc."""

    def __init__(self, project: Path, cache: Path, tools: Path) -> None:
        super().__init__(project, cache)
        tools.mkdir()
        self.count_file = tools / "compiles"
        self.count_file.touch()
        wrapper = tools / "cc"
        wrapper.write_text(WRAPPER.format(count=self.count_file))
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
        self.env["CC"] = str(wrapper)

    def compiles(self) -> int:
        return len(self.count_file.read_text().split())

    def script(self, name: str, code: str) -> Path:
        path = self.project / name
        path.write_text(textwrap.dedent(code))
        return path


def count(name: str, value: int = 1) -> None:
    COUNTS[name] += value
